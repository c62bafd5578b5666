/** The console's per-group rates (`console/js/rates.js`, plain ES module): no browser needed. */
import assert from "node:assert/strict";
import { GroupRates, WINDOW_S } from "../../console/js/rates.js";

Deno.test("console rates: events per second over the last whole seconds, bounded per group", () => {
  const r = new GroupRates();
  const t0 = 1_000_000_000_000; // a whole second
  for (let i = 0; i < 50; i++) r.add("A\u0000L1", t0 + i * 100); // 10/s for 5 s
  r.add("B\u0000L1", t0);
  // at t0 + 5 s: seconds t0 .. t0+4 are whole, 50 events over the window
  assert.equal(r.rate("A\u0000L1", t0 + 5000), 50 / WINDOW_S);
  assert.equal(r.rate("B\u0000L1", t0 + 5000), 1 / WINDOW_S);
  assert.equal(r.rate("C", t0 + 5000), 0);
  // the window slides: after it, nothing is counted
  assert.equal(r.rate("A\u0000L1", t0 + (5 + WINDOW_S) * 1000), 0);
  // old seconds are dropped as new ones come
  for (let s = 0; s < 1000; s++) r.add("A\u0000L1", t0 + s * 1000);
  assert.equal(r.rate("A\u0000L1", t0 + 1000 * 1000), 1);
});
