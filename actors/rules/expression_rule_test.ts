import assert from "node:assert/strict";
import { compile, trans, Twin } from "./testing.ts";

Deno.test("expression: raised while true, cleared when false, over fields and reported", () => {
  const t = new Twin(compile({
    id: "hot_auto",
    kind: "expression",
    expr: "temp > motor.limit && mode == 'auto'",
  }));
  t.reported = { motor: { limit: 80 }, mode: "auto" };
  assert.deepEqual(trans(t.msg(1, { temp: 70 })), []);
  assert.deepEqual(trans(t.msg(2, { temp: 90 })), ["raise:hot_auto=null@2000"]);
  assert.deepEqual(trans(t.msg(3, { temp: 95 })), []);
  assert.deepEqual(trans(t.msg(4, { temp: 95, mode: "manual" })), ["clear:hot_auto=null@4000"]);
});

Deno.test("expression: a missing field leaves the rule unevaluated", () => {
  const t = new Twin(compile({ id: "e", kind: "expression", expr: "a > 1 && b > 1" }));
  const before = t.msg(1, { a: 5 });
  assert.deepEqual(before.transitions, []);
  assert.deepEqual(before.state.rules, {});
  assert.deepEqual(trans(t.msg(2, { b: 5 })), ["raise:e=null@2000"]); // a from reported
  assert.deepEqual(trans(t.msg(3, { a: 0 })), ["clear:e=null@3000"]);
});

Deno.test("expression forSeconds: raised by tick once it held long enough", () => {
  const t = new Twin(compile({ id: "e", kind: "expression", expr: "door_open", forSeconds: 60 }));
  t.msg(0, { door_open: true });
  assert.equal(t.deadline(), 60);
  assert.deepEqual(trans(t.tick(59)), []);
  assert.deepEqual(trans(t.tick(60)), ["raise:e=null@60000"]);
});

Deno.test("expression: division by zero and non-boolean results fault the rule", () => {
  const t = new Twin(compile(
    { id: "ratio", kind: "expression", expr: "good / total < 0.9" },
    { id: "bare", kind: "expression", expr: "mode" },
  ));
  const out = t.msg(1, { good: 0, total: 0, mode: "auto" });
  assert.deepEqual(out.faults, [
    { rule: "ratio", message: "Division by zero at 5", count: 1 },
    { rule: "bare", message: "Expression yields a string, not a boolean", count: 1 },
  ]);
});
