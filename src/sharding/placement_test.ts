import assert from "node:assert/strict";
import { assignment, ownerOf, weight } from "./placement.ts";

const SHARDS = 64;
const owners = (nodes: string[]) => Array.from({ length: SHARDS }, (_, s) => ownerOf(s, nodes)!);

Deno.test("placement: no nodes, one node, order and duplicates do not matter", () => {
  assert.equal(ownerOf(3, []), undefined);
  assert.deepEqual(assignment(SHARDS, []), new Map());
  assert.deepEqual(owners(["solo"]), new Array(SHARDS).fill("solo"));
  const nodes = ["n1", "n2", "n3", "n4"];
  assert.deepEqual(owners(nodes), owners([...nodes].reverse()));
  assert.deepEqual(owners(nodes), owners([...nodes, "n2", "n1"]));
  assert.equal(weight("n1", 5), weight("n1", 5));
  // pinned: changing the weight function would move shards in a running cluster
  assert.equal(weight("n1", 5), 1124148418);
  assert.equal(ownerOf(5, ["n1", "n2"]), "n2");
});

Deno.test("placement: assignment covers every shard exactly once and lists every node", () => {
  const a = assignment(SHARDS, ["c", "a", "b", "idle"]);
  assert.deepEqual([...a.keys()], ["a", "b", "c", "idle"]);
  const all = [...a.values()].flat().sort((x, y) => x - y);
  assert.deepEqual(all, Array.from({ length: SHARDS }, (_, i) => i));
  for (const [node, shards] of a) {
    assert.deepEqual(shards, [...shards].sort((x, y) => x - y));
    for (const s of shards) assert.equal(ownerOf(s, ["a", "b", "c", "idle"]), node);
  }
});

Deno.test("placement: a join (3 → 4) moves ~1/4 of the shards, all of them to the new node", () => {
  for (const names of [["n1", "n2", "n3", "n4"], ["node-a", "node-b", "node-c", "node-d"]]) {
    const before = owners(names.slice(0, 3));
    const after = owners(names);
    const moved = before.filter((o, s) => o !== after[s]).length;
    for (let s = 0; s < SHARDS; s++) {
      if (before[s] !== after[s]) assert.equal(after[s], names[3], `shard ${s} moved elsewhere`);
    }
    // expected 16; a binomial(64, 1/4) is inside 8..24 with probability > 99 %
    assert.ok(moved >= 8 && moved <= 24, `${names}: moved ${moved}`);
    assert.equal(moved, assignment(SHARDS, names).get(names[3])!.length);
  }
});

Deno.test("placement: a leave moves only the leaver's shards, spread over the survivors", () => {
  const all = ["n1", "n2", "n3", "n4"];
  const before = owners(all);
  const after = owners(["n1", "n2", "n4"]);
  for (let s = 0; s < SHARDS; s++) {
    if (before[s] === "n3") assert.notEqual(after[s], "n3");
    else assert.equal(after[s], before[s], `shard ${s} of ${before[s]} moved`);
  }
  const takers = new Set(after.filter((_o, s) => before[s] === "n3"));
  assert.ok(takers.size >= 2, `n3's shards all went to ${[...takers]}`);
});

Deno.test("placement: the spread converges to even as the shard count grows", () => {
  const nodes = ["n1", "n2", "n3", "n4"];
  for (const shards of assignment(100_000, nodes).values()) {
    assert.ok(Math.abs(shards.length - 25_000) < 500, `${shards.length}`);
  }
  for (const [node, shards] of assignment(SHARDS, ["node-a", "node-b", "node-c"])) {
    assert.ok(shards.length >= 10, `${node} has only ${shards.length} shards`);
  }
});
