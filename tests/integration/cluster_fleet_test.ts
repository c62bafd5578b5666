/**
 * `GET /v1/fleet` in cluster mode: two nodes on a real nats-server, twins on both; either
 * node's answer sums both nodes' counts and says both answered; when one node leaves, the
 * other counts the twins of the shards it took.
 */
import assert from "node:assert/strict";
import { getJson, json, publishQos1, startNats, startNode, waitFor } from "../harness/mod.ts";
import { sharedBy } from "../harness/cluster_wait.ts";
import { shardOf } from "../../src/sharding/shard.ts";

Deno.test("cluster fleet: the counts of both nodes, through either node", async () => {
  await using nats = await startNats({ jetstream: true });
  const env = { NATS_URL: nats.url, TWINMILL_SHARDS: "8" };
  await using n1 = await startNode({ ...env, TWINMILL_NODE_ID: "f1" });
  await using n2 = await startNode({ ...env, TWINMILL_NODE_ID: "f2" });
  await sharedBy(n1, 2);

  const profile = {
    rules: [{ id: "hot", kind: "threshold", field: "temp", op: ">", value: 80 }],
  };
  assert.equal((await getJson(`${n1.httpUrl}/v1/profiles/pump`, json("PUT", profile))).status, 201);
  await waitFor(async () => (await getJson(`${n2.httpUrl}/v1/profiles/pump`)).status === 200, {
    message: "profile on node 2",
  });
  const twins = Array.from({ length: 8 }, (_, i) => `pump-${i}`);
  for (const [i, id] of twins.entries()) {
    const attributes = { type: "pump", site: i % 2 ? "north" : "south", line: `l${i % 3}` };
    const r = await getJson(`${n2.httpUrl}/v1/twins/${id}`, json("PUT", { attributes }));
    assert.equal(r.status, 201);
  }
  const view = (await getJson(`${n1.httpUrl}/v1/cluster`)).body;
  const owners = twins.map((id) => view.shards[shardOf(id, 8)].owner);
  assert.ok(owners.includes("f1") && owners.includes("f2"), `owners: ${owners}`);
  // every twin online (through either node's broker); the even ones too hot
  for (const [i, id] of twins.entries()) {
    const node = i < 4 ? n1 : n2;
    let r = await publishQos1(node, `twins/${id}/status`, "online");
    assert.equal(r.code, 0, r.stderr);
    r = await publishQos1(node, `twins/${id}/telemetry`, JSON.stringify({ temp: i % 2 ? 20 : 90 }));
    assert.equal(r.code, 0, r.stderr);
  }
  for (const node of [n1, n2]) {
    let last: unknown;
    await waitFor(async () => {
      const { status, body } = await getJson(`${node.httpUrl}/v1/fleet`);
      assert.equal(status, 200);
      last = body;
      return body.complete && body.totals.connectivity.online === 8 &&
        body.totals.alarms.active.major === 4;
    }, { message: `the fleet through ${node.httpUrl}` }).catch((err) => {
      throw new Error(`${err.message}: ${JSON.stringify(last)}`);
    });
    const f = last as {
      complete: boolean;
      nodes: { expected: number; answered: number; missing: string[] };
      totals: { twins: number };
      sites: Array<{ site: string; twins: number; alarms: { active: { major: number } } }>;
    };
    assert.deepEqual(f.nodes, { expected: 2, answered: 2, missing: [] });
    assert.equal(f.complete, true);
    assert.equal(f.totals.twins, 8);
    const south = f.sites.find((s) => s.site === "south")!;
    assert.equal(south.twins, 4);
    assert.equal(south.alarms.active.major, 4);
    assert.equal(f.sites.find((s) => s.site === "north")!.alarms.active.major, 0);
  }

  // node 2 leaves: its shards move to node 1, which counts their stored twins
  await n2[Symbol.asyncDispose]();
  let last: unknown;
  await waitFor(async () => {
    const { body } = await getJson(`${n1.httpUrl}/v1/fleet`);
    last = body;
    return body.complete && body.nodes.expected === 1 && body.totals.twins === 8 &&
      body.totals.connectivity.online === 8 && body.totals.alarms.active.major === 4;
  }, { timeoutMs: 30_000, message: "node 1 counts every twin" }).catch((err) => {
    throw new Error(`${err.message}: ${JSON.stringify(last)}`);
  });
});
