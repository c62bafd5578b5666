import assert from "node:assert/strict";
import { shardOf } from "./shard.ts";

Deno.test("shardOf is stable and spreads ids over all shards", () => {
  assert.equal(shardOf("press-7", 64), shardOf("press-7", 64));
  assert.equal(shardOf("a", 64), 44); // pinned: changing the hash would move every twin
  const counts = new Array(64).fill(0);
  for (let i = 0; i < 64_000; i++) counts[shardOf(`dev-${i}`, 64)]++;
  assert.ok(Math.min(...counts) > 800 && Math.max(...counts) < 1200, `uneven: ${counts}`);
});
