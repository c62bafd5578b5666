import assert from "node:assert/strict";
import { compile, trans, Twin } from "./testing.ts";

const rule = { id: "ramp", kind: "rate", field: "temp", limit: 1, windowSeconds: 10 };

Deno.test("rate: change per second between the oldest and newest sample in the window", () => {
  const t = new Twin(compile(rule));
  assert.deepEqual(trans(t.msg(0, { temp: 0 })), []); // nothing to compare with yet
  assert.deepEqual(trans(t.msg(1, { temp: 0.5 })), []); // 0.5/s
  assert.deepEqual(trans(t.msg(2, { temp: 5 })), ["raise:ramp=2.5@2000"]); // (5-0)/2
  assert.deepEqual(trans(t.msg(3, { temp: 5 })), []); // 5/3 per second: still raised
  assert.deepEqual(trans(t.msg(4, { temp: 5 })), []); // 5/4
  assert.deepEqual(trans(t.msg(5, { temp: 5 })), ["clear:ramp=1@5000"]); // 5/5: within
  for (let s = 6; s <= 11; s++) assert.deepEqual(trans(t.msg(s, { temp: 5 })), [], `t=${s}`);
  // at 12 s the window starts at 2 s: (17 - 5) / 10 = 1.2
  assert.deepEqual(trans(t.msg(12, { temp: 17 })), ["raise:ramp=1.2@12000"]);
});

Deno.test("rate: direction up ignores falls, down ignores rises", () => {
  const up = new Twin(compile({ ...rule, direction: "up" }));
  up.msg(0, { temp: 10 });
  assert.deepEqual(trans(up.msg(1, { temp: 0 })), []);
  const down = new Twin(compile({ ...rule, direction: "down" }));
  down.msg(0, { temp: 10 });
  assert.deepEqual(trans(down.msg(1, { temp: 12 })), []);
  assert.deepEqual(trans(down.msg(2, { temp: 0 })), ["raise:ramp=-5@2000"]);
  const both = new Twin(compile(rule));
  both.msg(0, { temp: 10 });
  assert.deepEqual(trans(both.msg(1, { temp: 0 })), ["raise:ramp=-10@1000"]);
});

Deno.test("rate: the state stays small at high message rates; old samples are dropped", () => {
  const t = new Twin(compile(rule));
  for (let i = 0; i < 5000; i++) t.msg(i / 100, { temp: i / 1000 }); // 100 Hz, 0.1/s
  const samples = t.state!.rules.ramp.samples!;
  assert.ok(samples.length <= 2 * 33 + 2, `kept ${samples.length / 2} samples`);
  assert.ok(samples[0] >= (49.99 - 10) * 1000 - 10_000 / 32, "only the window is kept");
  assert.equal(t.state!.rules.ramp.active, undefined);
  // A sample older than the newest retained one is ignored.
  assert.deepEqual(t.msg(60, { temp: 100 }, 1).transitions, []);
});

Deno.test("rate: a gap longer than the window leaves the rule unevaluated", () => {
  const t = new Twin(compile(rule));
  t.msg(0, { temp: 0 });
  assert.deepEqual(trans(t.msg(1, { temp: 10 })), ["raise:ramp=10@1000"]);
  assert.deepEqual(trans(t.msg(100, { temp: 0 })), []); // no earlier sample in the window
  assert.equal(t.state!.rules.ramp.active, true);
  assert.deepEqual(trans(t.msg(101, { temp: 0 })), ["clear:ramp=0@101000"]);
});
