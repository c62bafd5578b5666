/**
 * Waiting for a bench cluster to settle: every node's `GET /v1/cluster` complete, and the
 * views agreeing on every shard's owner.
 * @module
 */
import { log, sleep } from "./proc.ts";
import type { BenchNode } from "./node.ts";

/** Shape of `GET /v1/cluster` that the benches read. */
export interface ClusterView {
  settled: boolean;
  nodes: Array<{ id: string; shards: number[] }>;
  shards: Array<{ shard: number; owner: string | null; epoch: number | null; state: string }>;
}

/**
 * Polls `GET /v1/cluster` on every node until each has given a complete view (settled, the 3
 * node ids, every shard owned) and those views agree on every shard's owner. A view is read
 * from KV key listings, which now and then come back incomplete or with a node twice while
 * heartbeats are written, so such views are skipped, not trusted.
 */
export async function waitSettled(nodes: BenchNode[], ids: string[], shards: number) {
  const deadline = Date.now() + 60_000;
  const good = new Map<number, ClusterView>();
  let glitches = 0;
  let last = "";
  while (true) {
    await Promise.all(nodes.map(async (x, i) => {
      try {
        const v = await (await fetch(`${x.httpUrl}/v1/cluster`)).json() as ClusterView;
        const distinct = new Set(v.nodes.map((y) => y.id));
        const complete = v.settled && distinct.size === ids.length &&
          ids.every((id) => distinct.has(id)) && v.shards.length === shards &&
          v.shards.every((s) => s.owner !== null && s.state === "owned");
        if (complete) good.set(i, v);
        else glitches++;
        last = JSON.stringify(v.nodes.map((y) => [y.id, y.shards.length]));
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      }
    }));
    const owners = [...good.values()].map((v) => v.shards.map((s) => s.owner).join(","));
    if (good.size === nodes.length) {
      if (owners.every((o) => o === owners[0])) {
        const v = good.get(0)!;
        // Dedupe the node list (see above) for the notes.
        const seen = new Set<string>();
        v.nodes = v.nodes.filter((y) => !seen.has(y.id) && seen.add(y.id));
        if (glitches > 0) log(`cluster: skipped ${glitches} incomplete /v1/cluster views`);
        return v;
      }
      good.clear(); // ownership moved: start over
    }
    if (Date.now() > deadline) throw new Error(`Cluster not settled after 60 s: ${last}`);
    await sleep(200);
  }
}
