/**
 * Shard placement by bounded-load rendezvous hashing: every node gets a pseudo-random weight
 * per shard, `weight(node, shard)`, as in plain rendezvous hashing (highest random weight,
 * HRW), but no node takes more than its share. Pure functions, no coordinator and no shared
 * state: every node that sees the same set of live nodes computes the same owners.
 *
 * **The algorithm.** With S shards on N nodes every node may hold ⌊S/N⌋ shards, and the
 * first `S mod N` nodes to reach ⌊S/N⌋ may take one more. The (node, shard) pairs are taken in
 * order of falling weight (ties: smaller node id, then smaller shard); a pair places its shard
 * when the shard is still unplaced and the node still has room. That is the stable assignment
 * of shards to nodes under these capacities: no shard and node prefer each other (higher
 * weight) over what they got, so it is as close to plain HRW as the capacities allow.
 *
 * **The bound.** Every node holds ⌊S/N⌋ or ⌈S/N⌉ shards: max − min ≤ 1 for any S and N, so
 * max/min ≤ 1 + 1/⌊S/N⌋ (64 shards: 22/21/21 = 1.05× on 3 nodes, 13/13/13/13/12 = 1.08× on 5;
 * at most 1.15× whenever S ≥ 7·N). Plain HRW spread 64 shards e.g. 28/23/13.
 *
 * **Moves.** A join must move at least the shards the new node gets (≈ S/(N+1)), a leave the
 * shards of the leaver; plain HRW moves exactly those. Bounded load moves a few more, because
 * a node that loses (or gains) a shard frees (or fills) room that a shard spilled over from a
 * full node takes back: measured over random node sets, on average 1–4 extra moves for 64
 * shards (at most 10), 5–8 for 256 (at most 17); `placement_test.ts` asserts ≤ 2·√S extra.
 *
 * **Order-free.** The owners do not depend on the order (or duplicates) of the node list.
 * The weight is FNV-1a (32 bit) of `"{node}\u0000{shard}"` followed by the murmur3 32-bit
 * finalizer (FNV alone mixes the last characters poorly). Changing the weight function or the
 * algorithm moves shards in a running cluster: see the README, "Cluster mode → Balance"; while
 * a node of the version before bounded load is live, every node uses {@linkcode plainOwners}.
 *
 * @example
 * ```ts
 * owners(64, ["node-a", "node-b", "node-c"])[7]; // e.g. "node-b"
 * assignment(64, ["node-a", "node-b"]); // Map { "node-a" => [0, 3, ...], "node-b" => [1, 2, ...] }
 * ```
 * @module
 */

/** murmur3 fmix32: spreads every input bit over the whole word. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The pseudo-random weight (unsigned 32 bit) of `node` for `shard`. */
export function weight(node: string, shard: number): number {
  const s = `${node}\u0000${shard}`;
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}

/** Most (node, shard) pairs {@linkcode owners} sorts: 2^21 (the pair index's bits). */
const PAIRS_MAX = 2 ** 21;

/**
 * The owner of every shard `0..shards-1` among `nodes` (index = shard), or an empty array when
 * `nodes` is empty. Bounded-load rendezvous hashing (see the module doc): every node gets
 * ⌊shards/N⌋ or ⌈shards/N⌉ shards. Independent of the order and duplicates of `nodes`.
 * Costs a sort of shards × N pairs (64 × 5: ~0.1 ms; 1024 × 10: a few ms): compute it once
 * per node set. At most 2^21 pairs.
 */
export function owners(shards: number, nodes: readonly string[]): string[] {
  const ids = [...new Set(nodes)].sort();
  const n = ids.length;
  if (n === 0 || shards <= 0) return [];
  // pair p = node i, shard s at p = i * shards + s, sorted by falling weight, then smaller node,
  // then smaller shard: as one number, (2^32 - 1 - weight) · 2^21 + p (exact below 2^53)
  if (n * shards > PAIRS_MAX) throw new RangeError(`${n} nodes × ${shards} shards: too many`);
  const keys = new Float64Array(n * shards);
  for (let i = 0; i < n; i++) {
    for (let s = 0; s < shards; s++) {
      const p = i * shards + s;
      keys[p] = (0xffffffff - weight(ids[i], s)) * PAIRS_MAX + p;
    }
  }
  keys.sort();
  const floor = Math.floor(shards / n);
  let extra = shards % n; // nodes that may still hold floor + 1
  const held = new Array<number>(n).fill(0);
  const out = new Array<string>(shards);
  let left = shards;
  for (const key of keys) {
    const p = key % PAIRS_MAX;
    const i = Math.floor(p / shards);
    const s = p - i * shards;
    if (out[s] !== undefined) continue;
    if (held[i] === floor) {
      if (extra === 0) continue;
      extra--;
    } else if (held[i] > floor) continue;
    out[s] = ids[i];
    held[i]++;
    if (--left === 0) break;
  }
  return out;
}

/**
 * The placement of twinmill before bounded load: plain rendezvous hashing, every shard on the
 * node of highest weight (ties to the smaller id), however uneven. Used only while a node of
 * that version is live (a rolling upgrade): see `src/cluster/upgrade_placement.ts`.
 */
export function plainOwners(shards: number, nodes: readonly string[]): string[] {
  const ids = [...new Set(nodes)].sort();
  if (ids.length === 0) return [];
  return Array.from({ length: shards }, (_, s) => {
    let best = ids[0];
    for (const id of ids) if (weight(id, s) > weight(best, s)) best = id;
    return best;
  });
}

/**
 * Every shard `0..shards-1` placed on `nodes` by {@linkcode owners}: node id → its shards in
 * ascending order. Every (distinct) node is a key, also one that gets no shard; no nodes → an
 * empty map.
 *
 * @example
 * ```ts
 * const mine = assignment(64, liveNodeIds).get(myNodeId) ?? [];
 * ```
 */
export function assignment(shards: number, nodes: readonly string[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const node of [...new Set(nodes)].sort()) out.set(node, []);
  owners(shards, nodes).forEach((node, shard) => out.get(node)!.push(shard));
  return out;
}
