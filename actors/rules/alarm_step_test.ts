import assert from "node:assert/strict";
import { decide, pendingDeadline, raiseIfDue } from "./alarm_step.ts";
import type { Ctx } from "./kind.ts";
import type { RulesOutcome } from "./outcome.ts";
import type { RuleState } from "./state.ts";
import { compile } from "./testing.ts";

const rule = compile({ id: "r", kind: "expression", expr: "x", severity: "info" }).rules[0];

function ctx(now: number): Ctx {
  const out: RulesOutcome = {
    state: { profile: "", rules: {} },
    transitions: [],
    suppressed: [],
    points: [],
    actions: [],
    faults: [],
  };
  return { now, ts: now, fields: {}, reported: {}, out };
}

Deno.test("decide: delay, raise once, clear once", () => {
  let st: RuleState = { def: "d" };
  let c = ctx(0);
  st = decide(rule, st, true, false, 1, 1000, c);
  assert.deepEqual(st, { def: "d", pendingSince: 0, pendingValue: 1 });
  assert.equal(pendingDeadline(st, 1000), 1000);
  assert.equal(decide(rule, st, true, false, 1, 1000, ctx(500)), st); // nothing new
  c = ctx(999);
  assert.equal(raiseIfDue(rule, st, 1000, c), st);
  c = ctx(1000);
  st = raiseIfDue(rule, st, 1000, c);
  assert.deepEqual(st, { def: "d", active: true, severity: "info" });
  assert.deepEqual(c.out.transitions, [
    { rule: "r", kind: "raise", severity: "info", value: 1, ts: 1000 },
  ]);
  assert.equal(pendingDeadline(st, 1000), null);
  c = ctx(2000);
  assert.equal(decide(rule, st, true, false, 2, 1000, c), st); // already raised
  st = decide(rule, st, false, true, 3, 1000, c);
  assert.deepEqual(st, { def: "d" });
  assert.deepEqual(c.out.transitions.map((t) => t.kind), ["clear"]);
  // a broken condition drops the pending delay
  const pending = decide(rule, { def: "d" }, true, false, 1, 1000, ctx(0));
  assert.deepEqual(decide(rule, pending, false, true, 0, 1000, ctx(1)), { def: "d" });
});
