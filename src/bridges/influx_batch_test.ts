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

Deno.test("Batch.spread: each series in one part, in queue order; settles the batches with its parts", async () => {
  const a = new Batch(3);
  const b = new Batch(4);
  const lines: string[] = [];
  for (let i = 0; i < 60; i++) {
    // series with escaped spaces and commas: the series ends at the first unescaped space
    const line = `m,dev=pr\\ ess\\,${i % 6} t=${i} ${i}`;
    lines.push(line);
    (i < 30 ? a : b).push(line);
  }
  const parts = Batch.spread([a, b], 4, 9);
  const bodies = parts.filter((p) => p !== undefined).map((p) => text(p!).split("\n"));
  assert.equal(bodies.flat().length, 60);
  for (let s = 0; s < 6; s++) {
    const mine = lines.filter((l) => l.startsWith(`m,dev=pr\\ ess\\,${s} `));
    const holding = bodies.filter((body) => body.some((l) => mine.includes(l)));
    assert.equal(holding.length, 1, `series ${s} in one part`);
    assert.deepEqual(holding[0].filter((l) => mine.includes(l)), mine, "in queue order");
  }
  assert.ok(parts.every((p) => p === undefined || p.since === 9));
  const live = parts.filter((p) => p !== undefined);
  const settled = live[0]!.settled;
  for (const p of live) {
    assert.equal(p!.settled, settled);
    assert.equal(await Promise.race([a.settled.promise.then(() => "a"), "pending"]), "pending");
    if (--settled.parts === 0) settled.resolve();
  }
  await a.settled.promise;
  await b.settled.promise;
});
