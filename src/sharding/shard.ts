/**
 * Shard placement: `shardOf(twinId)` = FNV-1a 32-bit hash mod `shards`. Stable across nodes,
 * restarts and versions: changing it would move every twin.
 * @module
 */

/** The shard a twin belongs to. */
export function shardOf(twinId: string, shards: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < twinId.length; i++) {
    h ^= twinId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % shards;
}
