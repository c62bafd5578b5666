import assert from "node:assert/strict";
import { compile, trans, Twin } from "./testing.ts";

const overheat = {
  id: "overheat",
  kind: "threshold",
  field: "temp",
  op: ">",
  value: 80,
  clear: 75,
  forSeconds: 0,
  severity: "critical",
};

Deno.test("threshold: raise once, hysteresis holds until the clear level", () => {
  const t = new Twin(compile(overheat));
  assert.deepEqual(trans(t.msg(1, { temp: 70 })), []);
  assert.deepEqual(trans(t.msg(2, { temp: 80 })), []); // > 80, not >=
  const raised = t.msg(3, { temp: 81 });
  assert.deepEqual(raised.transitions, [
    { rule: "overheat", kind: "raise", severity: "critical", value: 81, ts: 3000 },
  ]);
  assert.deepEqual(trans(t.msg(4, { temp: 95 })), []); // no second raise
  assert.deepEqual(trans(t.msg(5, { temp: 78 })), []); // below 80, above the clear level
  assert.deepEqual(trans(t.msg(6, { temp: 75 })), ["clear:overheat=75@6000"]);
  assert.deepEqual(trans(t.msg(7, { temp: 79 })), []); // back in the band: no raise
  assert.deepEqual(trans(t.msg(8, { temp: 80.5 })), ["raise:overheat=80.5@8000"]);
});

Deno.test("threshold without clear: clears when the condition is false", () => {
  const t = new Twin(compile({ id: "low", kind: "threshold", field: "p", op: "<=", value: 2 }));
  assert.deepEqual(trans(t.msg(1, { p: 2 })), ["raise:low=2@1000"]);
  assert.equal(t.msg(1, { p: 2 }).transitions[0], undefined);
  assert.deepEqual(trans(t.msg(2, { p: 2.1 })), ["clear:low=2.1@2000"]);
  assert.equal(t.msg(2, { p: 2.1 }).transitions.length, 0);
});

Deno.test("threshold < with hysteresis clears at >= clear", () => {
  const t = new Twin(compile({
    id: "lowp",
    kind: "threshold",
    field: "p",
    op: "<",
    value: 10,
    clear: 12,
    severity: "minor",
  }));
  assert.deepEqual(trans(t.msg(1, { p: 9 })), ["raise:lowp=9@1000"]);
  assert.equal(t.msg(1, { p: 11.9 }).transitions.length, 0);
  assert.deepEqual(trans(t.msg(1, { p: 12 })), ["clear:lowp=12@1000"]);
  assert.equal(t.msg(1, { p: 9 }).transitions[0].severity, "minor");
});

Deno.test("threshold forSeconds: must hold continuously; raised by a message or by tick", () => {
  const t = new Twin(compile({ ...overheat, forSeconds: 10 }));
  assert.deepEqual(trans(t.msg(0, { temp: 90 })), []);
  assert.equal(t.deadline(), 10);
  assert.deepEqual(trans(t.msg(5, { temp: 91 })), []);
  assert.deepEqual(trans(t.msg(6, { temp: 70 })), []); // broken: the delay restarts
  assert.equal(t.deadline(), null);
  assert.deepEqual(trans(t.msg(7, { temp: 92 })), []);
  assert.equal(t.deadline(), 17);
  assert.deepEqual(trans(t.tick(16.999)), []);
  assert.deepEqual(trans(t.tick(17)), ["raise:overheat=92@17000"]); // last value, ts = now
  assert.deepEqual(trans(t.tick(30)), []);
  assert.equal(t.deadline(), null);
  assert.deepEqual(trans(t.msg(31, { temp: 70 })), ["clear:overheat=70@31000"]);
  // raised by the message that arrives once the delay has passed
  t.msg(40, { temp: 85 });
  assert.deepEqual(trans(t.msg(50, { temp: 86 })), ["raise:overheat=86@50000"]);
});

Deno.test("threshold: messages without the field do not evaluate it; a string faults it", () => {
  const t = new Twin(compile(overheat));
  t.msg(1, { temp: 90 });
  const before = t.state;
  const out = t.msg(2, { rpm: 5 });
  assert.equal(out.state, before); // same object: nothing changed
  assert.deepEqual(out.transitions, []);
  const bad = t.msg(3, { temp: "hot" });
  assert.deepEqual(bad.faults, [
    { rule: "overheat", message: 'Field "temp" holds a string, not a number', count: 1 },
  ]);
  assert.equal(bad.state.rules.overheat.active, true); // the alarm is untouched
});

Deno.test("threshold actions run at the matching transition", () => {
  const t = new Twin(compile({
    ...overheat,
    actions: [
      { type: "desired", patch: { fan: "max" } },
      { on: "clear", type: "desired", patch: { fan: "auto" } },
      { type: "command", name: "beep", args: { n: 3 } },
    ],
  }));
  const up = t.msg(1, { temp: 90 });
  assert.deepEqual(up.actions, [
    { rule: "overheat", action: { on: "raise", type: "desired", patch: { fan: "max" } } },
    { rule: "overheat", action: { on: "raise", type: "command", name: "beep", args: { n: 3 } } },
  ]);
  assert.deepEqual(t.msg(2, { temp: 95 }).actions, []);
  assert.deepEqual(t.msg(3, { temp: 70 }).actions, [
    { rule: "overheat", action: { on: "clear", type: "desired", patch: { fan: "auto" } } },
  ]);
});
