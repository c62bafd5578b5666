/**
 * Profiles and alarms in cluster mode: a profile stored through one node applies on every
 * node; alarms of a twin are listed and acknowledged through a node that does not own it;
 * a stale timer fires on the owner.
 */
import assert from "node:assert/strict";
import { getJson, json, publishQos1, startNats, startNode, waitFor } from "../harness/mod.ts";
import { sharedBy } from "../harness/cluster_wait.ts";
import { shardOf } from "../../src/sharding/shard.ts";

Deno.test("cluster rules: profile on every node, alarms listed and acked through any node", async () => {
  await using nats = await startNats({ jetstream: true });
  const env = { NATS_URL: nats.url, TWINMILL_SHARDS: "8" };
  await using n1 = await startNode({ ...env, TWINMILL_NODE_ID: "r1" });
  await using n2 = await startNode({ ...env, TWINMILL_NODE_ID: "r2" });
  await sharedBy(n1, 2);

  const profile = {
    rules: [
      { id: "overheat", kind: "threshold", field: "temp", op: ">", value: 80, severity: "major" },
      { id: "silent", kind: "stale", seconds: 2, severity: "info" },
    ],
  };
  assert.equal((await getJson(`${n1.httpUrl}/v1/profiles/oven`, json("PUT", profile))).status, 201);
  // the other node reads it from JetStream KV once told over NATS
  await waitFor(async () => (await getJson(`${n2.httpUrl}/v1/profiles/oven`)).status === 200, {
    message: "profile visible on node 2",
  });

  const twins = Array.from({ length: 8 }, (_, i) => `oven-${i}`);
  for (const id of twins) {
    const r = await getJson(
      `${n2.httpUrl}/v1/twins/${id}`,
      json("PUT", { attributes: { type: "oven" } }),
    );
    assert.equal(r.status, 201);
  }
  for (const id of twins) {
    const r = await publishQos1(n1, `twins/${id}/telemetry`, '{"temp": 95}');
    assert.equal(r.code, 0, r.stderr);
  }
  for (const node of [n1, n2]) {
    await waitFor(async () => {
      const { body } = await getJson(`${node.httpUrl}/v1/alarms?state=active&limit=1000`);
      return body.items.filter((a: { rule: string }) => a.rule === "overheat").length === 8;
    }, { message: `8 overheat alarms listed through ${node.httpUrl}` });
  }
  // acknowledge every alarm through node 2, including twins that live on node 1
  const view = (await getJson(`${n2.httpUrl}/v1/cluster`)).body;
  const owners = twins.map((id) => view.shards[shardOf(id, 8)].owner);
  assert.ok(owners.includes("r1") && owners.includes("r2"), `owners: ${owners}`);
  for (const id of twins) {
    const ack = await getJson(`${n2.httpUrl}/v1/alarms/${id}:overheat:1/ack`, json("POST", {}));
    assert.equal(ack.status, 200, JSON.stringify(ack.body));
    assert.equal(ack.body.state, "acknowledged");
    const twin = await getJson(`${n1.httpUrl}/v1/twins/${id}`);
    assert.equal(
      twin.body.alarms.find((a: { rule: string }) => a.rule === "overheat").state,
      "acknowledged",
    );
  }
  // the stale rule fires on each twin's owner with no message at all
  await waitFor(async () => {
    const { body } = await getJson(`${n2.httpUrl}/v1/alarms?state=active&limit=1000`);
    return body.items.filter((a: { rule: string }) => a.rule === "silent").length === 8;
  }, { timeoutMs: 20_000, message: "8 stale alarms raised by the owners' timers" });
});
