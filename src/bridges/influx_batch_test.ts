import assert from "node:assert/strict";
import { Batch } from "./influx_batch.ts";

const text = (b: Batch) => new TextDecoder().decode(b.body());

Deno.test("Batch: lines are UTF-8, newline-separated, past its first capacity", () => {
  const b = new Batch(5);
  const lines = Array.from({ length: 2000 }, (_, i) => `m,dev=pr€ss-${i} t=${i} ${i}`);
  for (const l of lines) b.push(l);
  assert.equal(b.size, 2000);
  assert.equal(b.since, 5);
  assert.equal(text(b), lines.join("\n"));
});

Deno.test("Batch: halves split at a line, share one settlement", () => {
  const b = new Batch(7);
  const lines = ["a x=1 1", "ü y=2 2", 'c z="é" 3', "d x=4 4", "e x=5 5"];
  for (const l of lines) b.push(l);
  const [first, second] = b.halves();
  assert.deepEqual([first.size, second.size], [2, 3]);
  assert.deepEqual([first.since, second.since], [7, 0], "the second half is due at once");
  assert.equal(text(first), lines.slice(0, 2).join("\n"));
  assert.equal(text(second), lines.slice(2).join("\n"));
  const [a, c] = second.halves();
  assert.equal(text(a), lines[2]);
  assert.equal(text(c), lines.slice(3).join("\n"));
  assert.equal(b.settled, c.settled);
  assert.equal(b.settled.parts, 3);
});
