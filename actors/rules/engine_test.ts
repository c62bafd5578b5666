import assert from "node:assert/strict";
import { evaluate, nextDeadline, tick } from "./engine.ts";
import { type RulesState, ruleStatus } from "./state.ts";
import { compile, trans, Twin } from "./testing.ts";

const overheat = {
  id: "overheat",
  kind: "threshold",
  field: "temp",
  op: ">",
  value: 80,
  clear: 75,
  severity: "critical",
};
const ratio = { id: "ratio", kind: "expression", expr: "good / total < 0.9" };

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === "object") {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

Deno.test("a faulting rule is marked and reported; the other rules carry on", () => {
  const t = new Twin(compile(ratio, overheat));
  const out = t.msg(1, { good: 0, total: 0, temp: 90 });
  assert.deepEqual(out.faults, [{ rule: "ratio", message: "Division by zero at 5", count: 1 }]);
  assert.deepEqual(trans(out), ["raise:overheat=90@1000"]);
  assert.equal(t.msg(2, { total: 0 }).faults[0].count, 2);
  assert.deepEqual(ruleStatus(t.state), [
    { rule: "overheat", active: true, severity: "critical", pendingSince: null, fault: null },
    {
      rule: "ratio",
      active: false,
      severity: null,
      pendingSince: null,
      fault: { message: "Division by zero at 5", count: 2, at: 2000 },
    },
  ]);
  // A message that does not evaluate the rule keeps the fault; a success clears it.
  t.reported = {};
  assert.deepEqual(t.msg(3, { temp: 91 }).faults, []);
  assert.equal(ruleStatus(t.state).find((s) => s.rule === "ratio")!.fault!.count, 2);
  const ok = t.msg(4, { good: 5, total: 10 });
  assert.deepEqual(ok.faults, []);
  assert.deepEqual(trans(ok), ["raise:ratio=null@4000"]);
  assert.equal(ruleStatus(t.state).find((s) => s.rule === "ratio")!.fault, null);
});

Deno.test("evaluate never mutates the state it is given; unchanged state is returned as is", () => {
  const p = compile(
    overheat,
    { id: "e", kind: "expression", expr: "good >= 0 && temp > 80", forSeconds: 2 },
    { id: "w", kind: "window", fields: ["temp"], seconds: 10 },
    { id: "s", kind: "stale", seconds: 5 },
    { id: "db", kind: "deadband", field: "temp", band: 1 },
    { id: "a", kind: "anomaly", field: "temp", warmup: 2 },
    { id: "r", kind: "rate", field: "temp", limit: 1, windowSeconds: 10 },
  );
  let state: RulesState | undefined;
  for (let i = 0; i < 30; i++) {
    const input = {
      fields: { temp: 70 + (i % 7) * 3, good: i, total: 0 },
      reported: {},
      ts: i * 1000,
    };
    const out = evaluate(p, deepFreeze(state), input, i * 1000);
    const ticked = tick(p, deepFreeze(out.state), i * 1000 + 500);
    // A write to a frozen state would throw, and the engine would report it as a fault.
    assert.deepEqual([...out.faults, ...ticked.faults], []);
    state = ticked.state;
  }
  const frozen = deepFreeze(state)!;
  const copy = JSON.parse(JSON.stringify(frozen));
  const unchanged = evaluate(p, frozen, { fields: { other: 1 }, reported: {}, ts: 30_000 }, 30_000);
  assert.notEqual(unchanged.state, frozen); // stale's `seen` moves with any telemetry
  const p2 = compile(overheat);
  const s2 = evaluate(p2, undefined, { fields: { temp: 90 }, reported: {}, ts: 0 }, 0).state;
  assert.equal(evaluate(p2, s2, { fields: { x: 1 }, reported: {}, ts: 1 }, 1).state, s2);
  assert.equal(tick(p2, s2, 10).state, s2);
  assert.deepEqual(JSON.parse(JSON.stringify(frozen)), copy);
});

Deno.test("state survives a JSON round trip (it is persisted in the twin snapshot)", () => {
  const p = compile({ ...overheat, forSeconds: 10 }, { id: "s", kind: "stale", seconds: 5 });
  const a = new Twin(p);
  const b = new Twin(p);
  for (const t of [a, b]) t.msg(0, { temp: 90 });
  b.state = JSON.parse(JSON.stringify(b.state));
  assert.deepEqual(trans(a.tick(10)), trans(b.tick(10)));
  assert.deepEqual(a.state, b.state);
  assert.equal(trans(a.tick(10)).length, 0);
});

Deno.test("nextDeadline is the earliest of all rules; 0 after a profile change", () => {
  const p = compile(
    { ...overheat, forSeconds: 30 },
    { id: "s", kind: "stale", seconds: 50 },
    { id: "w", kind: "window", fields: ["temp"], seconds: 60 },
  );
  const t = new Twin(p);
  t.msg(10, { temp: 90 });
  assert.equal(t.deadline(), 40); // threshold at 40, stale at 60, window at 60
  t.tick(40);
  assert.equal(t.deadline(), 60);
  t.tick(60);
  assert.equal(t.deadline(), null); // stale raised, window closed
  assert.equal(nextDeadline(compile(overheat), t.state), 0);
});

Deno.test("disabled rules are not evaluated", () => {
  const t = new Twin(compile({ ...overheat, enabled: false }));
  const out = t.msg(1, { temp: 99 });
  assert.deepEqual(out.transitions, []);
  assert.deepEqual(out.state.rules, {});
});

Deno.test("hot reload: removed and disabled rules clear, changed ones restart, others keep", () => {
  const rate = { id: "r", kind: "rate", field: "temp", limit: 100, windowSeconds: 60 };
  const t = new Twin(compile(
    overheat,
    rate,
    { id: "gone", kind: "threshold", field: "temp", op: ">", value: 50, severity: "minor" },
    { id: "off", kind: "threshold", field: "temp", op: ">", value: 60 },
  ));
  t.msg(1, { temp: 90 });
  t.msg(2, { temp: 91 });
  assert.deepEqual(ruleStatus(t.state).filter((s) => s.active).map((s) => s.rule), [
    "gone",
    "off",
    "overheat",
  ]);
  const rateState = t.state!.rules.r;
  t.profile = compile(
    { ...overheat, value: 95, clear: undefined }, // changed
    rate, // unchanged
    { id: "off", kind: "threshold", field: "temp", op: ">", value: 60, enabled: false },
  );
  assert.equal(t.deadline(), 0);
  const out = t.tick(3);
  assert.deepEqual(out.transitions, [
    { rule: "gone", kind: "clear", severity: "minor", value: null, ts: 3000 },
    { rule: "off", kind: "clear", severity: "major", value: null, ts: 3000 },
  ]);
  assert.equal(out.state.rules.r, rateState); // unchanged rule: the very same state
  assert.deepEqual(out.state.rules.overheat, {
    def: t.profile.byId.get("overheat")!.hash,
    active: true, // still raised...
    severity: "critical",
  });
  assert.deepEqual(Object.keys(out.state.rules).sort(), ["overheat", "r"]);
  assert.equal(t.deadline(), null);
  // ...until the new definition clears it: 92 is not > 95
  assert.deepEqual(trans(t.msg(4, { temp: 92 })), ["clear:overheat=92@4000"]);
});

Deno.test("hot reload through evaluate, and a rule turned into a non-alarm kind", () => {
  const t = new Twin(compile(overheat));
  t.msg(1, { temp: 90 });
  t.profile = compile({ id: "overheat", kind: "deadband", field: "temp", band: 5 });
  const out = t.msg(2, { temp: 91 });
  assert.deepEqual(trans(out), ["clear:overheat=null@2000"]);
  assert.equal(out.state.rules.overheat.written, 91);
  assert.equal(out.state.rules.overheat.active, undefined);
});
