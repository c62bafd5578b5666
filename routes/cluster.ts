/**
 * `GET /v1/cluster`: the operations view — nodes with their last heartbeat and shards, every
 * shard's owner, epoch and state, and handoffs in progress on this node.
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Coordinator } from "../src/cluster/coordinator.ts";
import type { KvLeases, KvMembership } from "../src/cluster/kv_leases.ts";
import { json } from "./schemas.ts";

const Shard = z.object({
  shard: z.number().int(),
  owner: z.string().nullable(),
  epoch: z.number().int().nullable(),
  state: z.string().openapi({
    description: "owned, unowned, or this node's handoff state of it (e.g. handing_off)",
  }),
});

const ClusterView = z.object({
  node: z.string().openapi({ description: "The node that answered" }),
  settled: z.boolean().openapi({ description: "No shard moves pending on the answering node" }),
  nodes: z.array(z.object({
    id: z.string(),
    http: z.string(),
    mqtt: z.string().nullable(),
    startedAt: z.string(),
    lastHeartbeat: z.string(),
    shards: z.array(z.number().int()),
  })),
  shards: z.array(Shard),
  handoffs: z.array(z.object({ shard: z.number().int(), node: z.string(), epoch: z.number() })),
}).openapi("Cluster");

const view = createRoute({
  method: "get",
  path: "/",
  tags: ["operations"],
  summary: "Cluster mode: nodes with their heartbeat and shards, every shard's owner and epoch, " +
    "handoffs in progress (served only in cluster mode)",
  responses: { 200: json(ClusterView, "The cluster as this node sees it") },
});

/** What `/v1/cluster` shows: the membership, the shard leases, this node's coordinator. */
export interface ClusterState {
  members: Pick<KvMembership, "nodes">;
  leases: Pick<KvLeases, "all">;
  coordinator: Pick<Coordinator, "o" | "states" | "settled">;
}

/** Cluster routes, mounted at `/v1/cluster`. */
export function clusterRoutes(c: ClusterState): OpenAPIHono {
  const app = new OpenAPIHono();
  app.openapi(view, async (ctx) => {
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
