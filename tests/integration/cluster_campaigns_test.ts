/**
 * Firmware campaigns in cluster mode: a campaign created through one node is driven by exactly
 * one node — the owner of its id's shard — while devices on both nodes get their offers, report
 * through whichever node they are connected to, and any node answers for the campaign and
 * streams its events.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { getJson, json, metric, startNats, startNode, waitFor } from "../harness/mod.ts";
import { sharedBy } from "../harness/cluster_wait.ts";
import { shardOf } from "../../src/sharding/shard.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

Deno.test("cluster campaigns: one driver, devices on every node, any node answers", async () => {
  await using nats = await startNats({ jetstream: true });
  const env = { NATS_URL: nats.url, TWINMILL_SHARDS: "8", TWINMILL_CAMPAIGN_TICK_MS: "100" };
  await using n1 = await startNode({ ...env, TWINMILL_NODE_ID: "k1" });
  await using n2 = await startNode({ ...env, TWINMILL_NODE_ID: "k2" });
  await sharedBy(n1, 2);

  const up = await getJson(`${n1.httpUrl}/v1/firmware?name=kiln-fw&version=3.1.0`, {
    method: "POST",
    headers: { "content-type": "application/octet-stream" },
    body: new Uint8Array(4096).fill(7),
  });
  assert.equal(up.status, 201, JSON.stringify(up.body));
  const ids = ["kiln-1", "kiln-2", "kiln-3", "kiln-4"];
  for (const id of ids) {
    const r = await getJson(
      `${n2.httpUrl}/v1/twins/${id}`,
      json("PUT", { attributes: { type: "kiln" } }),
    );
    assert.equal(r.status, 201);
  }
  // devices on both nodes; each reports done as soon as it gets an offer
  const clients: mqtt.MqttClient[] = [];
  const offered = new Set<string>();
  for (const [i, id] of ids.entries()) {
    const node = i % 2 === 0 ? n1 : n2;
    const client = await mqtt.connectAsync(node.mqttUrl!, { clientId: id, reconnectPeriod: 0 });
    clients.push(client);
    client.on("message", (_t, payload) => {
      const fw = JSON.parse(payload.toString()).firmware;
      if (!fw || offered.has(id)) return;
      offered.add(id);
      client.publish(
        `twins/${id}/reported`,
        JSON.stringify({ firmware: { version: fw.version, state: "done", campaign: fw.campaign } }),
        { qos: 1 },
      );
    });
    await client.subscribeAsync(`twins/${id}/desired`, { qos: 1 });
  }
  const ws = new WebSocket(`ws://127.0.0.1:${n2.httpPort}/v1/stream?types=campaign`);
  const events: Any[] = [];
  ws.onmessage = (e) => events.push(JSON.parse(e.data));
  ws.onerror = () => {};
  try {
    await new Promise((r) => (ws.onopen = r));
    await waitFor(async () => (await metric(n2, "twinmill_ws_clients")) >= 1);

    const r = await getJson(
      `${n1.httpUrl}/v1/campaigns`,
      json("POST", {
        name: "kilns",
        firmware: up.body.id,
        selector: { type: "kiln" },
        waves: [{ count: 1 }, { percent: 100 }],
      }),
    );
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const id = r.body.id;
    for (const node of [n2, n1]) {
      await waitFor(async () => {
        const c = await getJson(`${node.httpUrl}/v1/campaigns/${id}`);
        return c.body.state === "completed";
      }, { message: `campaign completed, read through ${node.httpUrl}` });
    }
    const c = (await getJson(`${n2.httpUrl}/v1/campaigns/${id}`)).body;
    assert.equal(c.reason, "4 of 4 done, 0 failed");
    assert.deepEqual([...offered].sort(), ids);

    // exactly one node drove it: the owner of the campaign id's shard
    const view = (await getJson(`${n1.httpUrl}/v1/cluster`)).body;
    const owner = view.shards[shardOf(id, 8)].owner;
    const drove = (node: typeof n1) =>
      node.logs.some((l) => l.includes('"campaign wave"') && l.includes(id));
    assert.deepEqual(
      [drove(n1), drove(n2)],
      [owner === "k1", owner === "k2"],
      `owner ${owner}`,
    );
    // the stream on node 2 saw the driver's events, wherever it ran
    await waitFor(() => events.some((e) => e.twin === id && e.data.state === "completed"));
    assert.deepEqual(
      events.filter((e) => e.twin === id && e.data.event === "wave").map((e) =>
        `${e.data.wave}:${e.data.phase}`
      ),
      ["1:started", "1:finished", "2:started", "2:finished"],
    );
  } finally {
    ws.close();
    for (const cl of clients) await cl.endAsync(true);
  }
});
