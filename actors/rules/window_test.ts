import assert from "node:assert/strict";
import { compile, Twin } from "./testing.ts";

Deno.test("window: a sample of a later window closes the current one", () => {
  const t = new Twin(compile({ id: "m", kind: "window", fields: ["temp", "on"], seconds: 60 }));
  assert.deepEqual(t.msg(61, { temp: 10, on: true }).points, []);
  assert.deepEqual(t.msg(90, { temp: 30, on: false, x: "s" }).points, []);
  assert.deepEqual(t.msg(100, { temp: 20 }).points, []);
  assert.deepEqual(t.msg(110, { rpm: 1 }).points, []); // no window field: not evaluated
  const out = t.msg(125, { temp: 99 });
  assert.deepEqual(out.points, [{
    rule: "m",
    measurement: "rollup",
    ts: 60_000, // aligned to a multiple of 60 s, not to the first sample (61 s)
    fields: {
      temp_avg: 20,
      temp_min: 10,
      temp_max: 30,
      temp_count: 3,
      temp_last: 20,
      on_avg: 0.5,
      on_min: 0,
      on_max: 1,
      on_count: 2,
      on_last: 0,
    },
  }]);
  assert.equal(t.state!.rules.m.windowStart, 120_000);
});

Deno.test("window: tick closes a window whose end passed; late samples are ignored", () => {
  const t = new Twin(compile({
    id: "m",
    kind: "window",
    fields: ["temp"],
    seconds: 60,
    aggs: ["max", "count"],
    measurement: "temp_1m",
  }));
  assert.equal(t.deadline(), null);
  t.msg(65, { temp: 1 });
  t.msg(70, { temp: 3 });
  assert.equal(t.deadline(), 120);
  assert.deepEqual(t.tick(119.999).points, []);
  assert.deepEqual(t.tick(120).points, [
    { rule: "m", measurement: "temp_1m", fields: { temp_max: 3, temp_count: 2 }, ts: 60_000 },
  ]);
  assert.deepEqual(t.tick(200).points, []); // closed once
  assert.equal(t.deadline(), null);
  const late = t.msg(121, { temp: 50 }, 110);
  assert.deepEqual(late.points, []);
  assert.equal(t.state!.rules.m.windowStart, undefined); // the late sample opened nothing
  t.msg(130, { temp: 7 });
  assert.deepEqual(t.msg(181, { temp: 8 }).points, [
    { rule: "m", measurement: "temp_1m", fields: { temp_max: 7, temp_count: 1 }, ts: 120_000 },
  ]);
});

Deno.test("window state is JSON-safe (no Infinity) and survives a round trip", () => {
  const t = new Twin(compile({ id: "m", kind: "window", fields: ["a", "b"], seconds: 10 }));
  t.msg(1, { a: -5 });
  t.state = JSON.parse(JSON.stringify(t.state));
  t.msg(2, { a: -7, b: 2 });
  assert.deepEqual(t.msg(11, { a: 0 }).points[0].fields, {
    a_avg: -6,
    a_min: -7,
    a_max: -5,
    a_count: 2,
    a_last: -7,
    b_avg: 2,
    b_min: 2,
    b_max: 2,
    b_count: 1,
    b_last: 2,
  });
});

Deno.test("window: an overflowing sum faults the rule instead of storing Infinity", () => {
  const t = new Twin(compile({ id: "m", kind: "window", fields: ["a"], seconds: 10 }));
  t.msg(1, { a: 1e308 });
  const out = t.msg(2, { a: 1e308 });
  assert.deepEqual(out.faults, [{ rule: "m", message: 'Sum of "a" overflowed', count: 1 }]);
  assert.equal(out.state.rules.m.acc![1], 1e308); // the state before the failing sample
  assert.doesNotThrow(() => JSON.stringify(out.state));
});
