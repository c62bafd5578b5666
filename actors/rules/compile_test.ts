import assert from "node:assert/strict";
import { compile } from "./testing.ts";

Deno.test("compile: threshold tests, durations in ms, deduplicated window lists", () => {
  const p = compile(
    { id: "t", kind: "threshold", field: "x", op: ">=", value: 10, clear: 8, forSeconds: 2.5 },
    { id: "n", kind: "threshold", field: "x", op: "!=", value: 3 },
    { id: "w", kind: "window", fields: ["a", "b", "a"], seconds: 1.5, aggs: ["max", "max"] },
    { id: "s", kind: "stale", seconds: 7 },
    { id: "d", kind: "deadband", field: "x", band: 1, enabled: false },
  );
  const [t, n, w, s, d] = p.rules;
  assert.ok(t.kind === "threshold" && n.kind === "threshold");
  assert.deepEqual([t.test(10), t.test(9.9), t.release(8), t.release(8.1), t.forMs], [
    true,
    false,
    true,
    false,
    2500,
  ]);
  assert.deepEqual([n.test(4), n.test(3), n.release(3), n.release(4)], [true, false, true, false]);
  assert.ok(w.kind === "window");
  assert.deepEqual([w.fields, w.aggs, w.windowMs, w.alarm], [["a", "b"], ["max"], 1500, false]);
  assert.ok(s.kind === "stale");
  assert.deepEqual([s.ms, s.field, s.alarm, s.severity], [7000, null, true, "major"]);
  assert.deepEqual(p.enabled.map((r) => r.id), ["t", "n", "w", "s"]);
  assert.equal(d.id, "d");
  assert.ok(Object.isFrozen(t.fresh));
  assert.deepEqual(t.fresh, { def: t.hash });
});
