/**
 * Shard placement by rendezvous hashing (highest random weight, HRW): every node gets a
 * pseudo-random weight per shard, `weight(node, shard)`, and the shard lives on the live node
 * with the highest weight. Pure functions, no coordinator and no shared state: every node that
 * sees the same set of live nodes computes the same owners.
 *
 * Why HRW and not `hash mod N` or a ring:
 * - **Minimal movement.** Adding a node moves exactly the shards for which the new node has the
 *   highest weight (~1/N of them), all *to* the new node; removing a node moves only the shards
 *   it owned, each to its runner-up. No other shard changes owner, so a join or a leave causes
 *   the fewest possible handoffs.
 * - **Order-free.** The owner does not depend on the order (or duplicates) of the node list.
 * - **No virtual nodes.** With 64 shards and a handful of nodes the spread is as even as a
 *   random assignment; a ring would need many virtual points per node to match it.
 *
 * The weight is FNV-1a (32 bit) of `"{node}\u0000{shard}"` followed by the murmur3 32-bit
 * finalizer (FNV alone mixes the last characters poorly). Ties (1 in 2^32) go to the node whose
 * id sorts first. Changing the weight function moves shards in a running cluster: keep it.
 *
 * @example
 * ```ts
 * ownerOf(7, ["node-a", "node-b", "node-c"]); // e.g. "node-b"
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

/**
 * The node that owns `shard` among `nodes` (highest weight; ties to the smallest id), or
 * `undefined` when `nodes` is empty. Independent of the order of `nodes`.
 */
export function ownerOf(shard: number, nodes: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestWeight = -1;
  for (const node of nodes) {
    const w = weight(node, shard);
    if (w > bestWeight || (w === bestWeight && best !== undefined && node < best)) {
      best = node;
      bestWeight = w;
    }
  }
  return best;
}

/**
 * Every shard `0..shards-1` placed on `nodes`: node id → its shards in ascending order. Every
 * (distinct) node is a key, also one that gets no shard; no nodes → an empty map.
 *
 * @example
 * ```ts
 * const mine = assignment(64, liveNodeIds).get(myNodeId) ?? [];
 * ```
 */
export function assignment(shards: number, nodes: readonly string[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  const distinct = [...new Set(nodes)].sort();
  for (const node of distinct) out.set(node, []);
  if (distinct.length === 0) return out;
  for (let shard = 0; shard < shards; shard++) out.get(ownerOf(shard, distinct)!)!.push(shard);
  return out;
}
