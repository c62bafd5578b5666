import assert from "node:assert/strict";
import { ackAlarm, type Alarm, applyTransition, parseAlarmId } from "./alarm.ts";
import type { AlarmTransition } from "./outcome.ts";

const raise = (ts: number, value: number): AlarmTransition => ({
  rule: "overheat",
  kind: "raise",
  severity: "critical",
  value,
  ts,
});
const clear = (ts: number): AlarmTransition => ({
  rule: "overheat",
  kind: "clear",
  severity: "critical",
  value: 70,
  ts,
});

Deno.test("raise opens an alarm; raise again counts; clear closes; next raise is a new alarm", () => {
  const a = applyTransition(null, "line:1.press-7", raise(1000, 91), 1)!;
  assert.deepEqual(a, {
    id: "line:1.press-7:overheat:1",
    twin: "line:1.press-7",
    rule: "overheat",
    severity: "critical",
    state: "active",
    acknowledged: false,
    raisedAt: 1000,
    clearedAt: null,
    value: 91,
    raiseCount: 1,
    updatedAt: 1000,
  });
  const b = applyTransition(a, "line:1.press-7", raise(2000, 95), 2)!;
  assert.equal(b.id, a.id);
  assert.equal(b.raiseCount, 2);
  assert.equal(b.value, 95);
  assert.equal(b.raisedAt, 1000);
  const c = applyTransition(b, "line:1.press-7", clear(3000), 3)!;
  assert.deepEqual([c.state, c.clearedAt, c.value, c.updatedAt], ["cleared", 3000, 95, 3000]);
  assert.equal(applyTransition(c, "line:1.press-7", clear(4000), 4), c); // nothing to clear
  const d = applyTransition(c, "line:1.press-7", raise(5000, 99), 5)!;
  assert.equal(d.id, "line:1.press-7:overheat:5");
  assert.equal(d.raiseCount, 1);
  assert.equal(applyTransition(null, "x", clear(1), 1), null);
});

Deno.test("ack: active -> acknowledged; cleared stays cleared; idempotent", () => {
  const a = applyTransition(null, "press-7", raise(1000, 91), 1)!;
  const acked = ackAlarm(a, 1500, "on it");
  assert.deepEqual(
    [acked.state, acked.acknowledged, acked.ackedAt, acked.ackComment, acked.updatedAt],
    ["acknowledged", true, 1500, "on it", 1500],
  );
  assert.equal(ackAlarm(acked, 9999, "again"), acked);
  const raisedAgain = applyTransition(acked, "press-7", raise(1600, 92), 2)!;
  assert.equal(raisedAgain.state, "acknowledged");
  const cleared = applyTransition(acked, "press-7", clear(2000), 3)!;
  assert.deepEqual([cleared.state, cleared.acknowledged], ["cleared", true]);
  const unackedClear = applyTransition(a, "press-7", clear(2000), 3)!;
  const late: Alarm = ackAlarm(unackedClear, 3000);
  assert.deepEqual([late.state, late.acknowledged, late.ackedAt], ["cleared", true, 3000]);
  assert.equal("ackComment" in late, false);
});

Deno.test("parseAlarmId parses from the right", () => {
  assert.deepEqual(parseAlarmId("site:A.line:1.press-7:over-heat_2:42"), {
    twin: "site:A.line:1.press-7",
    rule: "over-heat_2",
    seq: 42,
  });
  assert.deepEqual(parseAlarmId("p:r:0"), { twin: "p", rule: "r", seq: 0 });
  for (const bad of ["p:r", ":r:1", "p::1", "p:r:x", "p:r:01", "p:r:-1", "p/q:r:1", "p:r:1:"]) {
    assert.equal(parseAlarmId(bad), null, bad);
  }
  assert.equal(parseAlarmId("p:r:99999999999999999"), null); // not a safe integer
});
