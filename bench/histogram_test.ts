import assert from "node:assert/strict";
import { Histogram } from "./histogram.ts";

/** The exact `q` quantile of `values` (nearest rank). */
function exact(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.max(1, Math.ceil(q * s.length)) - 1];
}

Deno.test("histogram: quantiles within 1% of the exact ones, max exact", () => {
  let seed = 7;
  const rand = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  const values = Array.from({ length: 20_000 }, () => 0.05 + rand() ** 4 * 500);
  const h = new Histogram();
  for (const v of values) h.record(v);
  for (const q of [0.5, 0.9, 0.99, 0.999]) {
    const want = exact(values, q);
    const got = h.quantile(q);
    assert.ok(got >= want && got <= want * 1.0101, `q ${q}: ${got} against ${want}`);
  }
  assert.equal(h.max, Math.max(...values));
  assert.equal(h.quantile(1), h.max);
});

Deno.test("histogram: merged from JSON halves equals one histogram of all", () => {
  const a = new Histogram();
  const b = new Histogram();
  const all = new Histogram();
  for (let i = 1; i <= 1000; i++) {
    (i % 3 === 0 ? a : b).record(i / 10);
    all.record(i / 10);
  }
  const m = new Histogram();
  m.merge(JSON.parse(JSON.stringify(a)));
  m.merge(JSON.parse(JSON.stringify(b)));
  assert.equal(m.count, 1000);
  for (const q of [0.01, 0.5, 0.99]) assert.equal(m.quantile(q), all.quantile(q));
  assert.equal(m.max, 100);
  assert.equal(new Histogram().quantile(0.99), 0);
});
