import assert from "node:assert/strict";
import { evaluateExpression, type FieldScope } from "./expression_eval.ts";
import { parseExpression, type Value } from "./expression.ts";
import { RuleFault } from "./errors.ts";

const scope: FieldScope = {
  fields: { temp: 85, mode: "auto", on: true, zero: 0, "line-1": 7 },
  reported: { temp: 1, motor: { temp: 60, spec: { max: 90 } }, list: [1], nothing: null },
};
const ev = (src: string, s: FieldScope = scope): Value | undefined =>
  evaluateExpression(parseExpression(src), s);

Deno.test("evaluate: arithmetic, comparison, logic, functions", () => {
  assert.equal(ev("1 + 2 * 3 - 4 / 2"), 5);
  assert.equal(ev("7 % 4"), 3);
  assert.equal(ev("-temp"), -85);
  assert.equal(ev("temp > 80 && mode == 'auto'"), true);
  assert.equal(ev("temp > 80 && !on"), false);
  assert.equal(ev("temp < 80 || on"), true);
  assert.equal(ev("'ab' < 'b'"), true);
  assert.equal(ev("'a' + 'b' == 'ab'"), true);
  assert.equal(ev("1 == '1'"), false);
  assert.equal(ev("nothing == null"), true);
  assert.equal(ev("abs(-3) + sqrt(16) + min(5, 2, 9) + max(1, temp)"), 3 + 4 + 2 + 85);
});

Deno.test("evaluate: fields from the message first, then nested reported", () => {
  assert.equal(ev("temp"), 85); // message wins over reported.temp
  assert.equal(ev("motor.temp"), 60);
  assert.equal(ev("motor.spec.max - motor.temp"), 30);
  assert.equal(ev("`line-1`"), 7);
});

Deno.test("evaluate: a missing field makes the result undefined (three-valued logic)", () => {
  assert.equal(ev("missing > 1"), undefined);
  assert.equal(ev("motor.nope > 1"), undefined);
  assert.equal(ev("temp.deeper > 1"), undefined);
  assert.equal(ev("-missing"), undefined);
  assert.equal(ev("max(1, missing)"), undefined);
  assert.equal(ev("missing > 1 && temp > 80"), undefined);
  assert.equal(ev("missing > 1 && temp < 80"), false);
  assert.equal(ev("temp < 80 && missing"), false);
  assert.equal(ev("missing || on"), true);
  assert.equal(ev("missing || !on"), undefined);
});

Deno.test("evaluate: prototype properties are never reached", () => {
  assert.equal(ev("constructor"), undefined);
  assert.equal(ev("toString == null"), undefined);
  assert.equal(ev("motor.constructor"), undefined);
  assert.equal(ev("__proto__"), undefined);
  assert.equal(ev("`__proto__`"), undefined);
  assert.equal(ev("list.length"), undefined);
});

Deno.test("evaluate: faults on division by zero, type errors, non-values", () => {
  const fault = (src: string, msg: RegExp) =>
    assert.throws(() => ev(src), (e) => e instanceof RuleFault && msg.test(e.message));
  fault("temp / zero", /Division by zero at 5/);
  fault("temp % zero", /Division by zero/);
  fault("mode * 2", /Operator "\*" needs a number, got string at 5/);
  fault("temp < mode", /Operator "<" cannot combine number and string/);
  fault("temp + on", /cannot combine number and boolean/);
  fault("!temp", /Operator "!" needs a boolean, got number/);
  fault("temp && on", /Operator "&&" needs a boolean, got number/);
  fault("sqrt(-temp)", /sqrt\(\) of a negative number/);
  fault("motor > 1", /Field "motor" holds an object, not a value/);
  fault("list > 1", /holds an array/);
  const big = { fields: { x: 1e308 }, reported: {} };
  assert.throws(() => ev("x * 10", big), /Result is not a finite number at 2/);
});
