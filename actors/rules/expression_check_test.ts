import assert from "node:assert/strict";
import { inferType, parseCondition } from "./expression_check.ts";
import { parseExpression } from "./expression.ts";

const t = (src: string) => inferType(parseExpression(src));

Deno.test("inferType: types of operators, unknown fields", () => {
  assert.equal(t("1 + 2"), "number");
  assert.equal(t("'a' + 'b'"), "string");
  assert.equal(t("a + 1"), "number");
  assert.equal(t("a + b"), "unknown");
  assert.equal(t("a"), "unknown");
  assert.equal(t("a < b"), "boolean");
  assert.equal(t("null"), "null");
  assert.equal(t("abs(a)"), "number");
});

Deno.test("inferType: wrong operand types are caught before any message", () => {
  assert.throws(() => t('"a" * 2'), /Operator "\*" needs numbers, got string at 4/);
  assert.throws(() => t("1 + 'a'"), /Operator "\+" cannot combine number and string at 2/);
  assert.throws(() => t("!3"), /Operator "!" needs booleans, got number at 0/);
  assert.throws(() => t("a && 1"), /Operator "&&" needs booleans, got number/);
  assert.throws(() => t("true < 1"), /Operator "<" needs numbers or strings, got boolean/);
  assert.throws(() => t("x / 0"), /Division by zero at 2/);
  assert.throws(() => t("abs('x')"), /Operator "abs\(\)" needs numbers, got string/);
});

Deno.test("parseCondition requires a boolean (or unknown) result", () => {
  assert.equal(parseCondition("a > 1").kind, "binary");
  assert.equal(parseCondition("running").kind, "field");
  assert.throws(() => parseCondition("temp + 1"), /Expression yields a number, not a boolean at 0/);
  assert.throws(() => parseCondition("'x'"), /yields a string/);
});
