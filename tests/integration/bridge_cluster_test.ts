/**
 * The bridge in cluster mode: two nodes behind one plant broker (a real mosquitto) share the
 * devices' messages through a shared subscription (`$share/twinmill/…`); versions are exact
 * whichever node took a message, and a twin's desired state is published once, by its owner.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import {
  getJson,
  json,
  metric,
  metricBy,
  startMosquitto,
  startNats,
  startNode,
  waitFor,
} from "../harness/mod.ts";
import { sharedBy } from "../harness/cluster_wait.ts";

Deno.test("bridge cluster: two nodes share the plant broker's devices, versions exact; desired state published once", async () => {
  await using broker = await startMosquitto({ config: ["max_queued_messages 100000"] });
  await using nats = await startNats({ jetstream: true });
  const env = {
    NATS_URL: nats.url,
    TWINMILL_SHARDS: "8",
    TWINMILL_MQTT_URL: broker.url,
    TWINMILL_MQTT_PORT: "off",
  };
  await using n1 = await startNode({ ...env, TWINMILL_NODE_ID: "s1" });
  await using n2 = await startNode({ ...env, TWINMILL_NODE_ID: "s2" });
  for (const n of [n1, n2]) await n.waitForLog((r) => r.msg === "bridge subscribed", 15_000);
  assert.ok(
    n1.logs.some((l) => l.includes("$share/twinmill/twins/+/telemetry")),
    "a shared subscription",
  );
  await sharedBy(n1, 2);

  const twins = Array.from({ length: 6 }, (_, i) => `sh-${i}`);
  const n = 150;
  const dev = await mqtt.connectAsync(broker.url, { clientId: "plant-devices" });
  try {
    const all: Promise<unknown>[] = [];
    for (let i = 1; i <= n; i++) {
      for (const t of twins) {
        all.push(dev.publishAsync(`twins/${t}/telemetry`, JSON.stringify({ seq: i }), { qos: 1 }));
      }
    }
    await Promise.all(all);
  } finally {
    await dev.endAsync();
  }
  for (const node of [n1, n2]) {
    for (const id of twins) {
      const v = await waitFor(async () => {
        const r = await getJson(`${node.httpUrl}/v1/twins/${id}`);
        return r.status === 200 && r.body.version >= n ? r.body.version : null;
      }, { timeoutMs: 60_000, message: `${id} reaches ${n} via ${node.httpUrl}` });
      assert.equal(v, n, `${id} via ${node.httpUrl}`);
    }
  }
  // both nodes took a share of the messages
  const got = [
    await metric(n1, "twinmill_bridge_acks_total"),
    await metric(n2, "twinmill_bridge_acks_total"),
  ];
  assert.ok(got[0] > 0 && got[1] > 0, `acks per node: ${got}`);
  assert.equal(got[0] + got[1] >= twins.length * n, true);

  // desired state: published by the twin's owner only, retained on the plant broker
  const put = await getJson(`${n1.httpUrl}/v1/twins/sh-0/desired`, json("PATCH", { mode: "eco" }));
  assert.equal(put.status, 200, JSON.stringify(put.body));
  const desired = await waitFor(async () => {
    const out = await new Deno.Command("mosquitto_sub", {
      args: ["-p", String(broker.port), "-t", "twins/sh-0/desired", "-C", "1", "-W", "2"],
      stdout: "piped",
      stderr: "null",
    }).output();
    return new TextDecoder().decode(out.stdout).trim();
  }, { message: "retained desired state on the plant broker" });
  assert.deepEqual(JSON.parse(desired), { mode: "eco" });
  const published = [
    (await metricBy(n1, "twinmill_bridge_messages_published_total", "kind")).desired ?? 0,
    (await metricBy(n2, "twinmill_bridge_messages_published_total", "kind")).desired ?? 0,
  ];
  assert.equal(published[0] + published[1], 1, `desired published by ${published}`);
});
