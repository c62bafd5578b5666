/**
 * Placement across a rolling upgrade from the version before bounded load. Nodes of that version
 * place shards by plain rendezvous hashing and do not announce `placement` in their membership
 * record; this version announces `placement: "bounded"`. While the two disagree, a shard can be
 * wanted by no node: its plain owner is a new node that places it elsewhere, on an old node
 * that places it on the new one (64 shards on bench-1..3: 6 to 8 shards, until the last old
 * node is gone). So every node places by bounded load only while every live node announces
 * it, and by plain rendezvous hashing otherwise — exactly as the old nodes do. The switch
 * comes when the last old node leaves; it moves a few shards once (≈ the ones where the two
 * placements differ: 9 of 64 on bench-1..3).
 *
 * The coordinator reads the live node ids every round; the records (to see who announces
 * what) are read again when that set changes, and every `refreshMs` besides (a node
 * restarted under the same id, with a new version, before its old heartbeat expired).
 * @module
 */
import type { MembershipPort } from "./coordinator.ts";
import type { NodeInfo } from "./kv_leases.ts";
import type { Clock } from "../runtime/clock.ts";
import { owners, plainOwners } from "../sharding/placement.ts";

/** What this version adds to its membership record. */
export const PLACEMENT: Pick<NodeInfo, "placement"> = { placement: "bounded" };

/** Options of {@linkcode upgradePlacement}. */
export interface UpgradePlacementOptions {
  /** Live node ids, and every record of the membership bucket. */
  members: MembershipPort & { nodes(): Promise<Pick<NodeInfo, "id" | "placement">[]> };
  clock: Clock;
  /** Read the records again at least this often (ms). Default 2000. */
  refreshMs?: number;
}

/**
 * The coordinator's `members` and `owners` for a cluster that may hold nodes of the version
 * before bounded load: `owners` places by bounded load when every node of the last
 * `liveNodes()` announced it, else by plain rendezvous hashing.
 */
export function upgradePlacement(o: UpgradePlacementOptions): {
  members: MembershipPort;
  owners(shards: number, nodes: readonly string[]): readonly string[];
} {
  const refreshMs = o.refreshMs ?? 2000;
  /** node id → it announced bounded placement, as of the last read of the records. */
  let bounded = new Map<string, boolean>();
  let readAt = -Infinity;
  let live = "";
  let allBounded = true;
  let memo: { key: string; owners: string[] } = { key: "", owners: [] };
  return {
    members: {
      async liveNodes() {
        const ids = await o.members.liveNodes();
        const key = [...ids].sort().join("\u0000");
        if (key !== live || o.clock.now() - readAt >= refreshMs) {
          const records = await o.members.nodes().catch(() => null);
          if (records) {
            bounded = new Map(records.map((r) => [r.id, r.placement === PLACEMENT.placement]));
            readAt = o.clock.now();
            live = key;
          }
        }
        // a live id without a record (a listing that came back short): taken as this version
        allBounded = ids.every((id) => bounded.get(id) ?? true);
        return ids;
      },
    },
    owners(shards, nodes) {
      // rounds repeat the same live set: computed once per set (and mode)
      const key = `${allBounded}|${shards}|${[...new Set(nodes)].sort().join("\u0000")}`;
      if (key !== memo.key) {
        memo = { key, owners: (allBounded ? owners : plainOwners)(shards, nodes) };
      }
      return memo.owners;
    },
  };
}
