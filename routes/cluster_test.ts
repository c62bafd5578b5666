import assert from "node:assert/strict";
import { clusterRoutes, type ClusterState } from "./cluster.ts";
import type { CoordinatorOptions, Lease, ShardStateName } from "../src/cluster/coordinator.ts";

/** Two nodes, four shards: `a` holds 0 and 1 (handing 1 off), `b` holds 2; 3 has no lease. */
function state(settled: boolean): ClusterState {
  const leases = new Map<number, Lease>([
    [0, { node: "a", epoch: 3 }],
    [1, { node: "a", epoch: 4 }],
    [2, { node: "b", epoch: 1 }],
  ] as [number, Lease][]);
  const states = new Map<number, { state: ShardStateName; epoch: number }>([
    [0, { state: "owned", epoch: 3 }],
    [1, { state: "handing_off", epoch: 4 }],
  ]);
  return {
    members: {
      nodes: () =>
        Promise.resolve([
          { id: "a", http: "http://a", mqtt: "mqtt://a", startedAt: 0, ts: 1_000 },
          { id: "b", http: "http://b", mqtt: null, startedAt: 500, ts: 2_000 },
        ]),
    },
    leases: { all: () => Promise.resolve(leases) },
    coordinator: { o: { nodeId: "a", shards: 4 } as CoordinatorOptions, states, settled },
  };
}

Deno.test("GET /v1/cluster: nodes with their shards, every shard's owner, epoch and state, handoffs", async () => {
  const res = await clusterRoutes(state(false)).request("/");
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), {
    node: "a",
    settled: false,
    nodes: [
      {
        id: "a",
        http: "http://a",
        mqtt: "mqtt://a",
        startedAt: "1970-01-01T00:00:00.000Z",
        lastHeartbeat: "1970-01-01T00:00:01.000Z",
        shards: [0, 1],
      },
      {
        id: "b",
        http: "http://b",
        mqtt: null,
        startedAt: "1970-01-01T00:00:00.500Z",
        lastHeartbeat: "1970-01-01T00:00:02.000Z",
        shards: [2],
      },
    ],
    shards: [
      { shard: 0, owner: "a", epoch: 3, state: "owned" },
      { shard: 1, owner: "a", epoch: 4, state: "handing_off" },
      { shard: 2, owner: "b", epoch: 1, state: "owned" },
      { shard: 3, owner: null, epoch: null, state: "unowned" },
    ],
    handoffs: [{ shard: 1, node: "a", epoch: 4 }],
  });
});
