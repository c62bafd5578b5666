import assert from "node:assert/strict";
import { type Expr, MAX_EXPRESSION_DEPTH, parseExpression } from "./expression.ts";
import { ExpressionError } from "./errors.ts";

/** Render an AST back to fully parenthesised source, to check precedence. */
function show(e: Expr): string {
  switch (e.kind) {
    case "literal":
      return JSON.stringify(e.value);
    case "field":
      return e.path.join(".");
    case "unary":
      return `(${e.op}${show(e.operand)})`;
    case "binary":
      return `(${show(e.left)} ${e.op} ${show(e.right)})`;
    case "call":
      return `${e.fn}(${e.args.map(show).join(", ")})`;
  }
}

const p = (src: string) => show(parseExpression(src));

Deno.test("parse: precedence and associativity", () => {
  assert.equal(p("a || b && c"), "(a || (b && c))");
  assert.equal(p("a && b || c"), "((a && b) || c)");
  assert.equal(p("a == b < c"), "(a == (b < c))");
  assert.equal(p("1 + 2 * 3 - 4"), "((1 + (2 * 3)) - 4)");
  assert.equal(p("a - b - c"), "((a - b) - c)");
  assert.equal(p("a / b % c"), "((a / b) % c)");
  assert.equal(p("-a * b"), "((-a) * b)");
  assert.equal(p("!a && b"), "((!a) && b)");
  assert.equal(p("!(a && b)"), "(!(a && b))");
  assert.equal(p("(1 + 2) * 3"), "((1 + 2) * 3)");
  assert.equal(p("motor.temp >= 80 && mode != 'idle'"), '((motor.temp >= 80) && (mode != "idle"))');
});

Deno.test("parse: literals, fields, functions", () => {
  const e = parseExpression("max(abs(x), sqrt(2), min(a.b.c, 1)) == null");
  assert.equal(show(e), "(max(abs(x), sqrt(2), min(a.b.c, 1)) == null)");
  assert.deepEqual(parseExpression("true"), { kind: "literal", value: true, pos: 0 });
  assert.deepEqual(parseExpression(" `line-1 temp`"), {
    kind: "field",
    name: "line-1 temp",
    path: ["line-1 temp"],
    pos: 1,
  });
  assert.deepEqual(parseExpression("motor.temp"), {
    kind: "field",
    name: "motor.temp",
    path: ["motor", "temp"],
    pos: 0,
  });
});

Deno.test("parse errors name the token and its position", () => {
  const cases: [string, string][] = [
    ["temp > 80 && (x)) ", 'Unexpected token ")" at 16'],
    ["temp > ", "Unexpected end of expression at 7"],
    ["(temp > 1", "Unexpected end of expression at 9"],
    ["temp 80", 'Unexpected token "80" at 5'],
    ["a > > b", 'Unexpected token ">" at 4'],
    ["foo(1)", 'Unknown function "foo" at 0'],
    ["abs(1, 2)", "abs() takes 1 argument, got 2 at 0"],
    ["min()", "min() takes 1 to 32 arguments, got 0 at 0"],
    ["max(1,)", 'Unexpected token ")" at 6'],
    ["a 'x'", 'Unexpected token "x" at 2'],
  ];
  for (const [src, msg] of cases) {
    assert.throws(() => parseExpression(src), (e) => {
      assert.ok(e instanceof ExpressionError, src);
      assert.equal(e.message, msg, src);
      return true;
    });
  }
});

Deno.test("parse: depth, node count and length limits", () => {
  const deepParens = "(".repeat(MAX_EXPRESSION_DEPTH + 1) + "1" +
    ")".repeat(MAX_EXPRESSION_DEPTH + 1);
  assert.throws(() => parseExpression(deepParens), /nested more than 64 levels deep/);
  const ok = "(".repeat(20) + "1" + ")".repeat(20);
  assert.equal(show(parseExpression(ok)), "1");
  // A long left-deep chain: the parser does not recurse, but the tree is too deep.
  assert.throws(() => parseExpression(Array(70).fill("a").join(" + ")), /nested more than 64/);
  assert.equal(show(parseExpression(Array(60).fill("a").join(" + "))).split("+").length, 60);
  assert.throws(() => parseExpression("-".repeat(80) + "1"), /nested more than 64/);
  // Many nodes, shallow tree: max(...) with 32 arguments of 20 nodes each.
  const arg = "(" + Array(10).fill("1").join(" * ") + ")";
  const wide = Array(4).fill(`max(${Array(32).fill(arg).join(",")})`).join(" + ");
  assert.ok(wide.length > 1000);
  assert.throws(() => parseExpression(wide), /longer than 1000 characters/);
  const many = `max(${Array(32).fill(Array(9).fill("1").join("*")).join(",")})`;
  assert.ok(many.length < 1000);
  assert.throws(() => parseExpression(many), /more than 512 nodes/);
});
