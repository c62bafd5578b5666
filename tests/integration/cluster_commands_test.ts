/**
 * Commands and diagnostics in cluster mode: the device is connected to one node, its twin
 * lives on the other, the caller asks either; a queued command survives its twin's shard
 * being handed off when the owner leaves.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { getJson, json, startNats, startNode, waitFor } from "../harness/mod.ts";
import { sharedBy } from "../harness/cluster_wait.ts";
import { shardOf } from "../../src/sharding/shard.ts";

Deno.test("cluster commands: routed sync command, diagnostics across nodes, queue survives handoff", async () => {
  await using nats = await startNats({ jetstream: true });
  const env = { NATS_URL: nats.url, TWINMILL_SHARDS: "8" };
  await using n1 = await startNode({ ...env, TWINMILL_NODE_ID: "c1" });
  await using n2 = await startNode({ ...env, TWINMILL_NODE_ID: "c2" });
  await sharedBy(n1, 2);
  const view = (await getJson(`${n1.httpUrl}/v1/cluster`)).body;
  const ids = Array.from({ length: 16 }, (_, i) => `robot-${i}`);
  const ownedBy = (node: string) => ids.filter((id) => view.shards[shardOf(id, 8)].owner === node);
  const [remote, queued] = ownedBy("c2");
  assert.ok(remote && queued, "two twins live on c2");
  for (const id of [remote, queued]) {
    const r = await getJson(`${n1.httpUrl}/v1/twins/${id}`, json("PUT", { attributes: {} }));
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }

  // the device of a c2 twin connects to c1; the command is sent through c1 too
  const dev = await mqtt.connectAsync(n1.mqttUrl!, { clientId: `d-${remote}`, reconnectPeriod: 0 });
  dev.on("message", (topic, payload) => {
    const cmd = JSON.parse(payload.toString());
    dev.publish(`${topic}/result`, JSON.stringify({ status: "ok", result: { got: cmd.args } }), {
      qos: 1,
    });
  });
  await dev.subscribeAsync(`twins/${remote}/commands/+`, { qos: 1 });
  const sync = await getJson(
    `${n1.httpUrl}/v1/twins/${remote}/commands`,
    json("POST", { name: "home", args: { axis: 3 }, mode: "sync", timeoutMs: 8000 }),
  );
  assert.equal(sync.status, 200, JSON.stringify(sync.body));
  assert.equal(sync.body.status, "succeeded");
  assert.deepEqual(sync.body.result, { got: { axis: 3 } });

  // diagnostics through c2 (the owner) find the session on c1
  const d = (await getJson(`${n2.httpUrl}/v1/twins/${remote}/diagnostics`)).body;
  assert.equal(d.actor.node, "c2");
  assert.equal(d.connectivity.online, true);
  assert.equal(d.connectivity.session.node, "c1");
  assert.equal(d.connectivity.session.listensForCommands, true);
  assert.equal(d.messages.total, 1, "the command result");
  await dev.endAsync(true);

  // a command for an offline device, queued on c2; c2 leaves (handoff); c1 delivers it
  const q = await getJson(
    `${n2.httpUrl}/v1/twins/${queued}/commands`,
    json("POST", { name: "update", args: { v: 2 } }),
  );
  assert.equal(q.status, 202);
  assert.equal(q.body.status, "pending");
  assert.equal(await n2.kill("SIGTERM"), 0, "c2 leaves gracefully");
  await waitFor(async () => {
    const r = await getJson(`${n1.httpUrl}/v1/twins/${queued}/commands/${q.body.id}`);
    return r.status === 200 && r.body.status === "pending";
  }, { timeoutMs: 20_000, message: "c1 serves the queued command after the handoff" });
  const late = await mqtt.connectAsync(n1.mqttUrl!, {
    clientId: `d-${queued}`,
    reconnectPeriod: 0,
  });
  const got: string[] = [];
  late.on("message", (topic, payload) => {
    got.push(JSON.parse(payload.toString()).name);
    late.publish(`${topic}/result`, '{"status":"ok"}', { qos: 1 });
  });
  await late.subscribeAsync(`twins/${queued}/commands/+`, { qos: 1 });
  await waitFor(
    async () =>
      (await getJson(`${n1.httpUrl}/v1/twins/${queued}/commands/${q.body.id}`)).body.status ===
        "succeeded",
    { timeoutMs: 10_000 },
  );
  assert.deepEqual(got, ["update"]);
  await late.endAsync(true);
});
