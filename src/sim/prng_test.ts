import assert from "node:assert/strict";
import { rng, seedOf } from "./prng.ts";

Deno.test("rng: the same seed gives the same numbers, another seed others", () => {
  const a = rng(42), b = rng(42), c = rng(43);
  const xs = Array.from({ length: 100 }, () => a.next());
  assert.deepEqual(xs, Array.from({ length: 100 }, () => b.next()));
  assert.notDeepEqual(xs, Array.from({ length: 100 }, () => c.next()));
  assert.ok(xs.every((x) => x >= 0 && x < 1));
});

Deno.test("rng: normal() has mean 0 and standard deviation 1; int(n) stays in [0, n)", () => {
  const r = rng(7);
  const n = 20_000;
  let sum = 0, sq = 0;
  for (let i = 0; i < n; i++) {
    const v = r.normal();
    sum += v;
    sq += v * v;
  }
  const mean = sum / n;
  assert.ok(Math.abs(mean) < 0.03, `mean ${mean}`);
  assert.ok(Math.abs(Math.sqrt(sq / n - mean * mean) - 1) < 0.03);
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) seen.add(r.int(6));
  assert.deepEqual([...seen].sort(), [0, 1, 2, 3, 4, 5]);
});

Deno.test("seedOf: stable, and different for different parts", () => {
  assert.equal(seedOf(1, "faults"), seedOf(1, "faults"));
  assert.notEqual(seedOf(1, "faults"), seedOf(1, "plant"));
  assert.notEqual(seedOf(1, "device", 12), seedOf(11, "device", 2));
});
