/**
 * Placement: examples (pinned weights and spreads), then properties over random node sets
 * (`npm:fast-check`: 1..9 nodes of random ids, 16 / 64 / 256 shards): coverage, balance
 * (max − min ≤ 1), order-free, stable (no node and shard prefer each other over what they
 * got), and moves on a join or a leave within 2·√S of the fewest possible.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { assignment, owners, plainOwners, weight } from "./placement.ts";

const SHARDS = 64;

/** Shards per node (every node of `nodes` counted, also with none). */
function counts(placed: readonly string[], nodes: readonly string[]): number[] {
  return [...new Set(nodes)].map((n) => placed.filter((o) => o === n).length);
}

/** How many shards change owner between two placements. */
const moves = (a: readonly string[], b: readonly string[]) => a.filter((o, s) => o !== b[s]).length;

Deno.test("placement: no nodes, one node, order and duplicates do not matter", () => {
  assert.deepEqual(owners(SHARDS, []), []);
  assert.deepEqual(assignment(SHARDS, []), new Map());
  assert.deepEqual(owners(SHARDS, ["solo"]), new Array(SHARDS).fill("solo"));
  const nodes = ["n1", "n2", "n3", "n4"];
  assert.deepEqual(owners(SHARDS, nodes), owners(SHARDS, [...nodes].reverse()));
  assert.deepEqual(owners(SHARDS, nodes), owners(SHARDS, [...nodes, "n2", "n1"]));
  // pinned: changing the weight function would move shards in a running cluster
  assert.equal(weight("n1", 5), 1124148418);
  assert.equal(owners(SHARDS, ["n1", "n2"])[5], "n2");
});

Deno.test("placement: assignment covers every shard exactly once and lists every node", () => {
  const a = assignment(SHARDS, ["c", "a", "b", "idle"]);
  assert.deepEqual([...a.keys()], ["a", "b", "c", "idle"]);
  const all = [...a.values()].flat().sort((x, y) => x - y);
  assert.deepEqual(all, Array.from({ length: SHARDS }, (_, i) => i));
  const placed = owners(SHARDS, ["a", "b", "c", "idle"]);
  for (const [node, shards] of a) {
    assert.deepEqual(shards, [...shards].sort((x, y) => x - y));
    for (const s of shards) assert.equal(placed[s], node);
  }
  // fewer shards than nodes: one each, the rest idle
  assert.deepEqual(counts(owners(2, ["a", "b", "c"]), ["a", "b", "c"]).sort(), [0, 1, 1]);
});

Deno.test("placement: 64 shards on 3 and on 5 nodes are 22/21/21 and 13/13/13/13/12", () => {
  for (const prefix of ["node-", "bench-", "n"]) {
    for (const n of [3, 5]) {
      const nodes = Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`);
      const got = counts(owners(SHARDS, nodes), nodes).sort((a, b) => b - a);
      assert.deepEqual(got, n === 3 ? [22, 21, 21] : [13, 13, 13, 13, 12], nodes.join());
    }
  }
});

Deno.test("placement: plainOwners is the placement before bounded load (highest weight wins)", () => {
  const nodes = ["bench-1", "bench-2", "bench-3"];
  assert.deepEqual(counts(plainOwners(SHARDS, nodes), nodes), [28, 23, 13]);
  assert.equal(plainOwners(SHARDS, ["n1", "n2"])[5], "n2"); // pinned, as it always placed
  assert.deepEqual(plainOwners(SHARDS, []), []);
  for (let s = 0; s < SHARDS; s++) {
    const best = Math.max(...nodes.map((n) => weight(n, s)));
    assert.equal(weight(plainOwners(SHARDS, nodes)[s], s), best);
  }
});

/** 1..9 distinct node ids, random (short, any characters, or `node-{k}` like real ids). */
const nodeIds = (min: number, max: number) =>
  fc.uniqueArray(
    fc.oneof(fc.string({ minLength: 1, maxLength: 12 }), fc.nat(999).map((k) => `node-${k}`)),
    { minLength: min, maxLength: max },
  );
const shardCounts = fc.constantFrom(16, 64, 256);

Deno.test("placement (property): every shard placed once, max − min ≤ 1, ≤ 1.15× when S ≥ 7·N", () => {
  fc.assert(
    fc.property(nodeIds(1, 9), shardCounts, (nodes, shards) => {
      const placed = owners(shards, nodes);
      assert.equal(placed.length, shards);
      for (const o of placed) assert.ok(nodes.includes(o));
      const c = counts(placed, nodes);
      const [max, min] = [Math.max(...c), Math.min(...c)];
      assert.ok(max - min <= 1, `spread ${c}`);
      assert.equal(min, Math.floor(shards / nodes.length));
      if (shards >= 7 * nodes.length) assert.ok(max / min <= 1.15, `${c}`);
    }),
    { numRuns: 300 },
  );
});

Deno.test("placement (property): order-free, duplicates ignored, deterministic", () => {
  fc.assert(
    fc.property(
      nodeIds(1, 9).chain((nodes) =>
        fc.tuple(fc.constant(nodes), fc.shuffledSubarray(nodes, { minLength: nodes.length }))
      ),
      shardCounts,
      ([nodes, shuffled], shards) => {
        const placed = owners(shards, nodes);
        assert.deepEqual(owners(shards, [...shuffled, ...shuffled.slice(0, 2)]), placed);
        assert.deepEqual(owners(shards, nodes), placed);
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("placement (property): stable — a node preferred by a shard holds only better shards", () => {
  fc.assert(
    fc.property(nodeIds(2, 9), shardCounts, (nodes, shards) => {
      const placed = owners(shards, nodes);
      const worst = new Map<string, number>();
      placed.forEach((o, s) => worst.set(o, Math.min(worst.get(o) ?? Infinity, weight(o, s))));
      placed.forEach((owner, s) => {
        for (const m of nodes) {
          if (weight(m, s) <= weight(owner, s)) continue;
          // m outbid the owner for s, so m was full of shards it weighs higher than s
          assert.ok((worst.get(m) ?? -1) >= weight(m, s), `${m} prefers shard ${s}`);
        }
      });
    }),
    { numRuns: 200 },
  );
});

Deno.test("placement (property): a join or a leave moves at most 2·√S more than it must", () => {
  fc.assert(
    fc.property(nodeIds(2, 10), shardCounts, fc.nat(), (all, shards, pick) => {
      const bound = 2 * Math.sqrt(shards);
      const before = owners(shards, all.slice(0, -1));
      const after = owners(shards, all);
      const joiner = all[all.length - 1];
      // a join must give the new node its share; that many moves at least
      const mustJoin = after.filter((o) => o === joiner).length;
      assert.ok(moves(before, after) <= mustJoin + bound, `join: ${moves(before, after)}`);
      const leaver = all[pick % all.length];
      const left = owners(shards, all.filter((n) => n !== leaver));
      // a leave must move the leaver's shards
      const mustLeave = after.filter((o) => o === leaver).length;
      assert.ok(moves(after, left) <= mustLeave + bound, `leave: ${moves(after, left)}`);
      assert.ok(moves(after, left) >= mustLeave && moves(before, after) >= mustJoin);
    }),
    { numRuns: 300 },
  );
});
