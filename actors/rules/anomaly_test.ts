import assert from "node:assert/strict";
import { compile, trans, Twin } from "./testing.ts";

const rule = { id: "odd", kind: "anomaly", field: "v", alpha: 0.2, zLimit: 3, warmup: 10 };

Deno.test("anomaly: silent during warm-up, then raise on |v - mean| / sd > zLimit", () => {
  const t = new Twin(compile(rule));
  // warm-up: 10 samples, including an outlier that must not raise
  for (let i = 0; i < 10; i++) {
    assert.deepEqual(trans(t.msg(i, { v: i === 5 ? 1000 : 10 + (i % 2) * 2 })), [], `i=${i}`);
  }
  // let the outlier wash out of the statistics
  for (let i = 10; i < 60; i++) t.msg(i, { v: 10 + (i % 2) * 2 });
  const s = t.state!.rules.odd;
  assert.equal(s.n, 10); // capped at the warm-up
  assert.ok(Math.abs(s.mean! - 11) < 0.5, `mean ${s.mean}`);
  const sd = Math.sqrt(s.variance!);
  assert.ok(sd > 0.5 && sd < 2, `sd ${sd}`);
  assert.deepEqual(trans(t.msg(60, { v: 11 })), []);
  assert.deepEqual(trans(t.msg(61, { v: 30 })), ["raise:odd=30@61000"]);
  // Every sample updates the statistics, the anomalous one included: 30 again is now
  // within 3 sd of the moved mean.
  const s2 = t.state!.rules.odd;
  assert.ok(s2.mean! > 14 && s2.variance! > 50, JSON.stringify(s2));
  assert.deepEqual(trans(t.msg(62, { v: 30 })), ["clear:odd=30@62000"]);
});

Deno.test("anomaly: a constant signal makes any change anomalous, no change not", () => {
  const t = new Twin(compile({ ...rule, warmup: 3 }));
  for (let i = 0; i < 5; i++) t.msg(i, { v: 7 });
  assert.deepEqual(trans(t.msg(5, { v: 7 })), []);
  assert.deepEqual(trans(t.msg(6, { v: 7.5 })), ["raise:odd=7.5@6000"]);
  assert.doesNotThrow(() => JSON.stringify(t.state)); // z = ∞ never lands in the state
  assert.ok(Number.isFinite(t.state!.rules.odd.variance));
});
