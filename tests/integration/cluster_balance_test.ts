/**
 * Balance of a real cluster (one nats-server, 64 shards): 3 nodes hold 22/21/21 shards, a 4th
 * and a 5th join (16 each, then 13/13/13/13/12) and the 5th leaves with SIGTERM, all under
 * device traffic. After each step every node's `GET /v1/cluster` shows exactly the owners of
 * `owners()` (src/sharding/placement.ts) for the live nodes, every join and leave moved at most
 * 2·√64 = 16 shards more than it had to, and at the end every twin's version equals its
 * acknowledged messages, read through every node.
 */
import assert from "node:assert/strict";
import { type NodeProcess, startNats, startNode, waitFor } from "../harness/mod.ts";
import { owners } from "../../src/sharding/placement.ts";
import { assertExact, deviceTraffic } from "../harness/cluster_traffic.ts";

const SHARDS = 64;
const DEVICES = 12;

/** Acknowledged messages per twin. */
const acked = new Map<string, number>();

/** Devices publishing QoS 1 through `nodes`, counted in {@linkcode acked}. */
const traffic = (nodes: NodeProcess[]) =>
  deviceTraffic(nodes, acked, { devices: DEVICES, prefix: "bal" });

/** Owner of each shard as `node`'s `/v1/cluster` shows it, or null while one is not owned. */
async function view(node: NodeProcess): Promise<string[] | null> {
  const c = await (await fetch(`${node.httpUrl}/v1/cluster`)).json() as {
    shards: Array<{ shard: number; owner: string | null; state: string }>;
  };
  if (c.shards.length !== SHARDS || c.shards.some((s) => s.owner === null)) return null;
  return [...c.shards].sort((a, b) => a.shard - b.shard).map((s) => s.owner!);
}

/** Waits until every node shows the placement of `ids`; returns it. */
async function placedOn(nodes: NodeProcess[], ids: string[]): Promise<string[]> {
  const want = owners(SHARDS, ids);
  await waitFor(async () => {
    for (const n of nodes) {
      const v = await view(n);
      if (v === null || v.some((o, s) => o !== want[s])) return false;
    }
    return true;
  }, { timeoutMs: 60_000, message: `every node shows the placement over ${ids}` });
  return want;
}

const perNode = (placed: string[], ids: string[]) =>
  ids.map((id) => placed.filter((o) => o === id).length);
const moves = (a: string[], b: string[]) => a.filter((o, s) => o !== b[s]).length;

Deno.test("cluster balance: 64 shards 22/21/21 on 3 nodes, 13/13/13/13/12 on 5; joins and a leave move few shards; versions exact", async () => {
  await using nats = await startNats({ jetstream: true });
  const env = { NATS_URL: nats.url, TWINMILL_SHARDS: String(SHARDS) };
  const ids = ["b1", "b2", "b3"];
  await using b1 = await startNode({ ...env, TWINMILL_NODE_ID: "b1" });
  await using b2 = await startNode({ ...env, TWINMILL_NODE_ID: "b2" });
  await using b3 = await startNode({ ...env, TWINMILL_NODE_ID: "b3" });
  const nodes = [b1, b2, b3];
  let placed = await placedOn(nodes, ids);
  assert.deepEqual(perNode(placed, ids).sort(), [21, 21, 22]);

  const t = traffic([b1, b2, b3]);
  await waitFor(() => t.total() >= 100, { timeoutMs: 30_000 });
  await using b4 = await startNode({ ...env, TWINMILL_NODE_ID: "b4" });
  nodes.push(b4), ids.push("b4");
  let before = placed;
  placed = await placedOn(nodes, ids);
  assert.deepEqual(perNode(placed, ids), [16, 16, 16, 16]);
  assert.ok(moves(before, placed) <= 16 + 16, `join of b4 moved ${moves(before, placed)}`);

  await using b5 = await startNode({ ...env, TWINMILL_NODE_ID: "b5" });
  nodes.push(b5), ids.push("b5");
  before = placed;
  placed = await placedOn(nodes, ids);
  assert.deepEqual(perNode(placed, ids).sort(), [12, 13, 13, 13, 13]);
  const joined = placed.filter((o) => o === "b5").length;
  assert.ok(moves(before, placed) <= joined + 16, `join of b5 moved ${moves(before, placed)}`);

  await waitFor(() => t.total() >= 300, { timeoutMs: 30_000 });
  assert.equal(await b5.kill("SIGTERM"), 0);
  nodes.pop(), ids.pop();
  before = placed;
  placed = await placedOn(nodes, ids);
  assert.deepEqual(perNode(placed, ids), [16, 16, 16, 16]);
  const left = before.filter((o) => o === "b5").length;
  assert.ok(moves(before, placed) <= left + 16, `leave of b5 moved ${moves(before, placed)}`);
  await t.stop();

  // every acknowledged message applied exactly once, read through every node
  await assertExact(nodes, acked, 60_000);
});
