import assert from "node:assert/strict";
import { rng } from "./prng.ts";
import { driftStep, type FieldSpec, initialField, round, sampleField, sine } from "./signals.ts";

Deno.test("sine: zero, peak, zero, trough over one period; phase shifts it", () => {
  assert.equal(sine(0, 100, 5), 0);
  assert.ok(Math.abs(sine(25, 100, 5) - 5) < 1e-9);
  assert.ok(Math.abs(sine(50, 100, 5)) < 1e-9);
  assert.ok(Math.abs(sine(75, 100, 5) + 5) < 1e-9);
  assert.ok(Math.abs(sine(0, 100, 5, 0.25) - 5) < 1e-9);
});

Deno.test("drift: reverts to 0 and its spread settles at sigma", () => {
  const r = rng(3);
  let x = 0, sq = 0;
  const n = 20_000;
  for (let i = 0; i < n; i++) {
    x = driftStep(x, 30, 2, r);
    sq += x * x;
  }
  const sd = Math.sqrt(sq / n);
  assert.ok(Math.abs(sd - 2) < 0.15, `sd ${sd}`);
  assert.equal(driftStep(1.5, 0, 2, r), 1.5, "no time, no drift");
  assert.equal(driftStep(1.5, 10, 0, r), 1.5, "sigma 0, no drift");
});

const sample = (spec: FieldSpec, steps: Array<[number, boolean]>, seed = 1) => {
  const r = rng(seed);
  let st = initialField();
  let last = 0;
  return steps.map(([t, active]) => {
    const s = sampleField(spec, st, t, t - last, active, 0, 480, r);
    st = s.state;
    last = t;
    return s.value;
  });
};

Deno.test("counter: counts while running, holds while idle, integer values", () => {
  const spec: FieldSpec = { name: "strokes", base: 0, counter: 2, decimals: 0 };
  assert.deepEqual(
    sample(spec, [[0, true], [1.2, true], [2.5, true], [10, false], [11, true]]),
    [0, 2, 5, 5, 7],
  );
});

Deno.test("wear: grows linearly and resets past max (a tool change)", () => {
  const spec: FieldSpec = { name: "tool_wear", base: 0, wear: 10, max: 100, decimals: 1 };
  assert.deepEqual(sample(spec, [[0, true], [5, true], [9.5, true], [10.5, true], [12, true]]), [
    0,
    50,
    95,
    0,
    15,
  ]);
});

Deno.test("noise, bounds, idle value and rounding", () => {
  const spec: FieldSpec = {
    name: "speed",
    base: 1.2,
    noise: 0.5,
    idle: 0,
    min: 0,
    max: 1.5,
    decimals: 2,
  };
  const steps: Array<[number, boolean]> = Array.from({ length: 500 }, (_, i) => [i, i % 10 !== 0]);
  const vs = sample(spec, steps);
  assert.ok(vs.every((v) => v >= 0 && v <= 1.5), "clamped to [min, max]");
  assert.ok(vs.every((v) => round(v, 2) === v), "two decimals");
  assert.ok(vs.some((v) => v === 1.5) && vs.some((v) => v > 0 && v < 1.2), "noise spreads it");
  const idle = vs.filter((_, i) => i % 10 === 0);
  assert.ok(idle.every((v) => v < 0.5), `idle near 0: ${idle}`);
  assert.deepEqual(vs, sample(spec, steps), "same seed, same values");
});
