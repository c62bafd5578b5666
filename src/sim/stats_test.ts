import assert from "node:assert/strict";
import { rng } from "./prng.ts";
import { Histogram } from "./stats.ts";

const exact = (sorted: number[], p: number) =>
  sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];

Deno.test("histogram: percentiles within 2 % of the exact ones, exact max", () => {
  const r = rng(11);
  const h = new Histogram();
  const xs: number[] = [];
  for (let i = 0; i < 50_000; i++) {
    const v = Math.exp(r.normal() * 1.2) * 3; // log-normal around 3 ms
    xs.push(v);
    h.record(v);
  }
  xs.sort((a, b) => a - b);
  for (const p of [50, 90, 99, 99.9]) {
    const want = exact(xs, p);
    const got = h.percentile(p);
    assert.ok(got >= want && got <= want * 1.021, `p${p}: ${got} vs ${want}`);
  }
  assert.equal(h.max, xs.at(-1));
  assert.equal(h.count, 50_000);
});

Deno.test("histogram: empty, tiny and huge values, add and reset", () => {
  const h = new Histogram();
  assert.equal(h.percentile(50), 0);
  h.record(0);
  h.record(0.001);
  h.record(5e7); // past the last bucket: clamped there, max still exact
  assert.equal(h.percentile(50), 0.01);
  assert.equal(h.percentile(100), 5e7);
  const g = new Histogram();
  g.record(2);
  g.add(h);
  assert.equal(g.count, 4);
  assert.equal(g.max, 5e7);
  g.reset();
  assert.equal(g.count, 0);
  assert.equal(g.max, 0);
  assert.equal(g.percentile(99), 0);
});
