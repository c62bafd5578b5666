/**
 * The rule expression language: a hand-written Pratt parser over `lexer.ts` tokens that
 * yields a plain, JSON-serialisable AST. Nothing is ever passed to `eval` or `Function`.
 *
 * Grammar (usual precedence, lowest first): `||`, `&&`, `==` `!=`, `<` `<=` `>` `>=`,
 * `+` `-`, `*` `/` `%`, unary `!` `-`; parentheses; literals (numbers, `'strings'`,
 * `"strings"`, `true`, `false`, `null`); fields (`temp`, dotted `motor.temp`, or any name in
 * backticks); functions `abs(x)`, `sqrt(x)`, `min(a, ...)`, `max(a, ...)`.
 * @module
 */
import { ExpressionError } from "./errors.ts";
import { type Token, tokenize } from "./lexer.ts";

/** A value an expression computes: JSON scalars. */
export type Value = number | string | boolean | null;

/** Binary operators. */
export type BinaryOp =
  | "||"
  | "&&"
  | "=="
  | "!="
  | "<"
  | "<="
  | ">"
  | ">="
  | "+"
  | "-"
  | "*"
  | "/"
  | "%";

/** Built-in functions. */
export type FunctionName = "abs" | "sqrt" | "min" | "max";

/** An expression AST node; `pos` is the 0-based offset of the node in the source. */
export type Expr =
  | { kind: "literal"; value: Value; pos: number }
  | {
    kind: "field";
    /** The name as written (dotted or the backtick content). */
    name: string;
    /** Path into nested objects of `reported` (`motor.temp` → `["motor", "temp"]`). */
    path: string[];
    pos: number;
  }
  | { kind: "unary"; op: "!" | "-"; operand: Expr; pos: number }
  | { kind: "binary"; op: BinaryOp; left: Expr; right: Expr; pos: number }
  | { kind: "call"; fn: FunctionName; args: Expr[]; pos: number };

/** Longest expression source accepted (characters). */
export const MAX_EXPRESSION_LENGTH = 1000;
/** Deepest AST accepted (levels). */
export const MAX_EXPRESSION_DEPTH = 64;
/** Largest AST accepted (nodes). */
export const MAX_EXPRESSION_NODES = 512;

const BINARY_BP: Record<string, number> = {
  "||": 10,
  "&&": 20,
  "==": 30,
  "!=": 30,
  "<": 40,
  "<=": 40,
  ">": 40,
  ">=": 40,
  "+": 50,
  "-": 50,
  "*": 60,
  "/": 60,
  "%": 60,
};
const PREFIX_BP = 70;
const ARITY: Record<FunctionName, [number, number]> = {
  abs: [1, 1],
  sqrt: [1, 1],
  min: [1, 32],
  max: [1, 32],
};
const LITERALS: Record<string, Value> = { true: true, false: false, null: null };

/**
 * Parse an expression into its AST.
 *
 * @example
 * ```ts
 * const ast = parseExpression("motor.temp > 80 && !maintenance");
 * ```
 * @throws {ExpressionError} naming the position, e.g. `Unexpected token ")" at 14`.
 */
export function parseExpression(src: string): Expr {
  if (src.length > MAX_EXPRESSION_LENGTH) {
    throw new ExpressionError(
      `Expression is longer than ${MAX_EXPRESSION_LENGTH} characters`,
      MAX_EXPRESSION_LENGTH,
    );
  }
  return new Parser(tokenize(src)).parse();
}

class Parser {
  #i = 0;
  #level = 0;
  #nodes = 0;
  /** Depth of the nodes with children (leaves are 1). */
  #depth = new Map<Expr, number>();
  constructor(readonly toks: Token[]) {}

  parse(): Expr {
    const e = this.#expr(0);
    const t = this.#peek();
    if (t.type !== "end") throw unexpected(t);
    return e;
  }

  #peek(): Token {
    return this.toks[this.#i];
  }

  #next(): Token {
    return this.toks[this.#i++];
  }

  #expr(rbp: number): Expr {
    const first = this.#next();
    // Parentheses, unary operators and arguments recurse here: bound the parser's own stack.
    if (++this.#level > MAX_EXPRESSION_DEPTH) throw tooDeep(first.pos);
    let left = this.#prefix(first);
    for (;;) {
      const t = this.#peek();
      const bp = t.type === "op" ? BINARY_BP[t.value] : undefined;
      if (bp === undefined || bp <= rbp) break;
      this.#next();
      const right = this.#expr(bp);
      const op = t.value as BinaryOp;
      left = this.#node({ kind: "binary", op, left, right, pos: t.pos }, [left, right]);
    }
    this.#level--;
    return left;
  }

  #prefix(t: Token): Expr {
    switch (t.type) {
      case "number":
      case "string":
        return this.#node({ kind: "literal", value: t.value, pos: t.pos }, []);
      case "quoted":
        return this.#node({ kind: "field", name: t.value, path: [t.value], pos: t.pos }, []);
      case "name":
        if (Object.hasOwn(LITERALS, t.value)) {
          return this.#node({ kind: "literal", value: LITERALS[t.value], pos: t.pos }, []);
        }
        if (this.#peek().type === "op" && this.#peek().value === "(") return this.#call(t);
        return this.#node(
          { kind: "field", name: t.value, path: t.value.split("."), pos: t.pos },
          [],
        );
      case "op":
        if (t.value === "(") {
          const e = this.#expr(0);
          this.#expect(")");
          return e;
        }
        if (t.value === "!" || t.value === "-") {
          const operand = this.#expr(PREFIX_BP);
          return this.#node({ kind: "unary", op: t.value, operand, pos: t.pos }, [operand]);
        }
    }
    throw unexpected(t);
  }

  #call(t: Token): Expr {
    if (!Object.hasOwn(ARITY, t.value)) {
      throw new ExpressionError(`Unknown function "${t.value}"`, t.pos);
    }
    const fn = t.value as FunctionName;
    this.#next(); // "("
    const args: Expr[] = [];
    if (!(this.#peek().type === "op" && this.#peek().value === ")")) {
      for (;;) {
        args.push(this.#expr(0));
        if (!(this.#peek().type === "op" && this.#peek().value === ",")) break;
        this.#next();
      }
    }
    this.#expect(")");
    const [lo, hi] = ARITY[fn];
    if (args.length < lo || args.length > hi) {
      const want = lo === hi ? `${lo} argument${lo === 1 ? "" : "s"}` : `${lo} to ${hi} arguments`;
      throw new ExpressionError(`${fn}() takes ${want}, got ${args.length}`, t.pos);
    }
    return this.#node({ kind: "call", fn, args, pos: t.pos }, args);
  }

  #expect(op: string): void {
    const t = this.#next();
    if (t.type !== "op" || t.value !== op) throw unexpected(t);
  }

  #depthOf(e: Expr): number {
    return this.#depth.get(e) ?? 1;
  }

  #node(e: Expr, children: Expr[]): Expr {
    if (++this.#nodes > MAX_EXPRESSION_NODES) {
      throw new ExpressionError(`Expression has more than ${MAX_EXPRESSION_NODES} nodes`, e.pos);
    }
    let d = 0;
    for (const c of children) d = Math.max(d, this.#depthOf(c));
    if (d + 1 > MAX_EXPRESSION_DEPTH) throw tooDeep(e.pos);
    if (d > 0) this.#depth.set(e, d + 1);
    return e;
  }
}

function tooDeep(pos: number): ExpressionError {
  return new ExpressionError(
    `Expression is nested more than ${MAX_EXPRESSION_DEPTH} levels deep`,
    pos,
  );
}

function unexpected(t: Token): ExpressionError {
  if (t.type === "end") return new ExpressionError("Unexpected end of expression", t.pos);
  const text = t.type === "string" ? JSON.stringify(t.value) : `"${t.value}"`;
  return new ExpressionError(`Unexpected token ${text}`, t.pos);
}
