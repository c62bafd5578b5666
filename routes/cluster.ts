/**
 * `GET /v1/cluster`: the operations view — nodes with their last heartbeat and shards, every
 * shard's owner, epoch and state, and handoffs in progress on this node.
 * @module
 */
import { Hono } from "hono";
import type { ClusterParts } from "../src/cluster/cluster_mode.ts";

/** Cluster routes, mounted at `/v1/cluster`. */
export function clusterRoutes(c: ClusterParts): Hono {
  const app = new Hono();
  app.get("/", async (ctx) => {
    const [nodes, leases] = await Promise.all([c.members.nodes(), c.leases.all()]);
    const shards: Array<
      { shard: number; owner: string | null; epoch: number | null; state: string }
    > = [];
    for (let shard = 0; shard < c.coordinator.o.shards; shard++) {
      const lease = leases.get(shard);
      const local = c.coordinator.states.get(shard);
      shards.push({
        shard,
        owner: lease?.node ?? null,
        epoch: lease?.epoch ?? null,
        state: local && local.state !== "owned" ? local.state : lease ? "owned" : "unowned",
      });
    }
    return ctx.json({
      node: c.coordinator.o.nodeId,
      settled: c.coordinator.settled,
      nodes: nodes.map((n) => ({
        id: n.id,
        http: n.http,
        mqtt: n.mqtt,
        startedAt: new Date(n.startedAt).toISOString(),
        lastHeartbeat: new Date(n.ts).toISOString(),
        shards: shards.filter((s) => s.owner === n.id).map((s) => s.shard),
      })),
      shards,
      handoffs: [...c.coordinator.states]
        .filter(([, s]) => s.state === "handing_off")
        .map(([shard, s]) => ({ shard, node: c.coordinator.o.nodeId, epoch: s.epoch })),
    });
  });
  return app;
}
