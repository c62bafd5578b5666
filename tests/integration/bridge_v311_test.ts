/**
 * The bridge's fallback to MQTT 3.1.1, against a real broker that speaks only 3.1.1: the MQTT
 * listener of nats-server 2.9 (persistent sessions and QoS 1 work; shared subscriptions and
 * topics with a `.`, such as Sparkplug's `spBv1.0/…`, do not, so single node, Sparkplug off).
 * The bridge is refused with MQTT 5, connects with 3.1.1, bridges every device message exactly
 * once and publishes the retained desired state back; `GET /v1/connectors` says `mqtt 3.1.1`.
 */
import assert from "node:assert/strict";
import {
  findBinary,
  getJson,
  json,
  mosquittoPub,
  startNats,
  startNode,
  twinOrNull,
  waitFor,
} from "../harness/mod.ts";

type Twin = { version: number; reported: Record<string, unknown> };

Deno.test("bridge: a 3.1.1-only broker (nats-server): falls back, each message applied once, desired retained", async () => {
  await using nats = await startNats({ mqtt: true });
  const port = String(nats.mqttPort);
  await using node = await startNode({
    TWINMILL_MQTT_URL: `mqtt://127.0.0.1:${port}`,
    TWINMILL_MQTT_PORT: "off",
    TWINMILL_SPARKPLUG: "off",
  });
  await node.waitForLog((r) => r.msg === "the broker does not speak MQTT 5; using MQTT 3.1.1");
  const connected = await node.waitForLog((r) => r.msg === "bridge connected", 15_000);
  assert.equal(connected.protocol, "mqtt 3.1.1");
  await node.waitForLog((r) => r.msg === "bridge subscribed");

  // a 3.1.1 device: 20 messages at QoS 1, one per line
  const lines = Array.from({ length: 20 }, (_, i) => JSON.stringify({ seq: i + 1 })).join("\n");
  const pub = await mosquittoPub(
    ["-V", "311", "-p", port, "-q", "1", "-t", "twins/nb-1/telemetry", "-l"],
    lines + "\n",
  );
  assert.equal(pub.code, 0, pub.stderr);
  const t = await waitFor(async () => {
    const t = await twinOrNull<Twin>(node.httpUrl, "nb-1");
    return t && t.version >= 20 ? t : null;
  }, { message: "twin nb-1 reaches version 20", timeoutMs: 30_000 });
  assert.equal(t!.version, 20, "each message applied exactly once");
  assert.equal(t!.reported.seq, 20);

  const res = await getJson(`${node.httpUrl}/v1/connectors`);
  const bridge = (res.body.connectors as { name: string; status: Record<string, unknown> }[])
    .find((c) => c.name === "bridge");
  assert.equal(bridge?.status.protocol, "mqtt 3.1.1");
  assert.equal(bridge?.status.connected, true);
  assert.equal(bridge?.status.unacknowledged, 0, "every PUBACK sent");

  // downlink: the retained desired state on the 3.1.1 broker
  const patch = await getJson(`${node.httpUrl}/v1/twins/nb-1/desired`, json("PATCH", { rpm: 5 }));
  assert.equal(patch.status, 200, JSON.stringify(patch.body));
  const desired = await waitFor(async () => {
    const out = await new Deno.Command(findBinary("mosquitto_sub", "mosquitto-clients"), {
      args: ["-V", "311", "-p", port, "-t", "twins/nb-1/desired", "-C", "1", "-W", "2"],
      stdout: "piped",
      stderr: "null",
    }).output();
    return new TextDecoder().decode(out.stdout).trim() || null;
  }, { message: "retained desired state on nats-server" });
  assert.deepEqual(JSON.parse(desired!), { rpm: 5 });
});

Deno.test("bridge: nats-server refuses Sparkplug's will topic (spBv1.0/…): the bridge says it cannot connect", async () => {
  await using nats = await startNats({ mqtt: true });
  await using node = await startNode({
    TWINMILL_MQTT_URL: `mqtt://127.0.0.1:${nats.mqttPort}`,
    TWINMILL_MQTT_PORT: "off",
  });
  const line = await node.waitForLog(
    (r) => r.msg === "bridge cannot connect to the broker; retrying",
    15_000,
  );
  assert.match(line.error, /closed the connection before its CONNACK/);
  const res = await getJson(`${node.httpUrl}/v1/connectors`);
  const bridge = (res.body.connectors as { name: string; status: Record<string, unknown> }[])
    .find((c) => c.name === "bridge");
  assert.equal(bridge?.status.connected, false);
});
