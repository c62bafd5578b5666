/**
 * MQTT 5 user properties through the bridge (`TWINMILL_MQTT_URL`) from a real mosquitto 2: a
 * device's properties, passed on by the plant's broker, reach the twin's event on
 * `/v1/stream`; a message over the limits is counted as `bad_property` and never applied.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import {
  getJson,
  metric,
  metricBy,
  mosquittoPub,
  type NodeProcess,
  startMosquitto,
  startNode,
  waitFor,
} from "../harness/mod.ts";

/** Opens `/v1/stream?<query>`; resolves once the node counts the client. */
async function openStream(node: NodeProcess, query: string) {
  const ws = new WebSocket(`ws://127.0.0.1:${node.httpPort}/v1/stream?${query}`);
  const events: Array<{ type: string; data: unknown; properties?: unknown }> = [];
  ws.onmessage = (e) => events.push(JSON.parse(e.data));
  const closed = new Promise<void>((resolve) => ws.onclose = () => resolve());
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    closed.then(() => reject(new Error("stream closed before it opened")));
  });
  await waitFor(async () => (await metric(node, "twinmill_ws_clients")) >= 1, {
    message: "node counts the stream client",
  });
  return {
    events,
    async [Symbol.asyncDispose]() {
      if (ws.readyState !== WebSocket.CLOSED) ws.close();
      await closed;
    },
  };
}

Deno.test("bridge: MQTT 5 user properties from the plant's mosquitto reach the twin's event", async () => {
  await using broker = await startMosquitto();
  await using node = await startNode({ TWINMILL_MQTT_URL: broker.url, TWINMILL_MQTT_PORT: "off" });
  await node.waitForLog((r) => r.msg === "bridge subscribed", 15_000);
  const id = "bridged-props";
  await using stream = await openStream(node, `twins=${id}&types=telemetry`);

  const pub = await mosquittoPub([
    ...["-V", "5", "-h", "127.0.0.1", "-p", String(broker.port), "-q", "1"],
    ...["-D", "publish", "user-property", "line", "L3"],
    ...["-t", `twins/${id}/telemetry`, "-m", '{"temp":1}'],
  ]);
  assert.equal(pub.code, 0, pub.stderr);
  const dev = await mqtt.connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 0 });
  try {
    const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`p${i}`, "x"]));
    await dev.publishAsync(`twins/${id}/telemetry`, '{"temp":9}', {
      qos: 1,
      properties: { userProperties: many },
    });
    await dev.publishAsync(`twins/${id}/telemetry`, '{"temp":2}', {
      qos: 1,
      properties: { userProperties: { shift: ["night", "late"] } },
    });
  } finally {
    await dev.endAsync();
  }
  await waitFor(() => stream.events.length >= 2, { message: "2 events on the stream" });
  assert.deepEqual(stream.events.map((e) => [e.data, e.properties]), [
    [{ temp: 1 }, { line: "L3" }],
    [{ temp: 2 }, { shift: ["night", "late"] }],
  ]);
  const rejected = await metricBy(node, "twinmill_mqtt_messages_rejected_total", "reason");
  assert.equal(rejected.bad_property, 1);
  assert.equal((await getJson(`${node.httpUrl}/v1/twins/${id}`)).body.version, 2);
});
