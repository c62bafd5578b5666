import assert from "node:assert/strict";
import { ExpressionError, RuleFault } from "./errors.ts";

Deno.test("ExpressionError names the position and keeps it", () => {
  const e = new ExpressionError('Unexpected token ")"', 14);
  assert.equal(e.message, 'Unexpected token ")" at 14');
  assert.equal(e.pos, 14);
  assert.equal(e.code, "expression_invalid");
  assert.equal(e.name, "ExpressionError");
});

Deno.test("RuleFault has a stable code and keeps its cause", () => {
  const cause = new TypeError("x");
  const e = new RuleFault("Division by zero at 3", { cause });
  assert.equal(e.code, "rule_fault");
  assert.equal(e.name, "RuleFault");
  assert.equal(e.cause, cause);
  assert.ok(e instanceof Error);
});
