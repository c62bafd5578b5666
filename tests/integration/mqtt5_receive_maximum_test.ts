/**
 * Receive Maximum, inbound (`TWINMILL_MQTT_RECEIVE_MAXIMUM`), on a real node: told to MQTT 5
 * clients in CONNACK; an MQTT 5 client with more QoS 1 messages unacknowledged gets the PUBACKs
 * of the earlier ones, then DISCONNECT 0x93, and the extra message is not applied; an MQTT 3.1.1
 * client with the same burst is held back, never disconnected, every message applied once.
 * (A burst in one write is read at once, before anything can be durable: deterministic.)
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { getJson, metricBy, startNode, waitFor } from "../harness/mod.ts";
import { PINGREQ, puback, publish, rawMqtt } from "../harness/raw_mqtt.ts";

const version = async (url: string, id: string): Promise<number> =>
  (await getJson(`${url}/v1/twins/${id}`)).body.version ?? 0;

Deno.test("receive maximum: CONNACK says it; MQTT 5 over it gets DISCONNECT 0x93, 3.1.1 is held back", async () => {
  await using node = await startNode({ TWINMILL_MQTT_RECEIVE_MAXIMUM: "2" });

  const v5 = mqtt.connect(node.mqttUrl!, { protocolVersion: 5, reconnectPeriod: 0 });
  const connack = await new Promise<mqtt.IConnackPacket>((resolve, reject) => {
    v5.once("connect", resolve);
    v5.once("error", reject);
  });
  assert.equal(connack.properties?.receiveMaximum, 2);
  await v5.endAsync();

  const t5 = "twins/rm-5/telemetry";
  const c = await rawMqtt(node.mqttPort!, 5, "rm-5");
  await c.send(
    publish(5, t5, 1, '{"n":1}'),
    publish(5, t5, 2, '{"n":2}'),
    publish(5, t5, 3, '{"n":3}'),
  );
  await puback(c, 1);
  await puback(c, 2);
  const disconnect = await c.read();
  assert.equal(disconnect?.type, 14, "DISCONNECT");
  assert.equal(disconnect.body[0], 0x93, "Receive Maximum exceeded");
  assert.equal(await c.read(), null);
  c.close();
  await waitFor(async () => (await version(node.httpUrl, "rm-5")) === 2);
  const rejected = await metricBy(node, "twinmill_mqtt_messages_rejected_total", "reason");
  assert.equal(rejected.receive_maximum, 1);

  const t4 = "twins/rm-4/telemetry";
  const d = await rawMqtt(node.mqttPort!, 4, "rm-4");
  const ids = Array.from({ length: 20 }, (_, i) => i + 1);
  await d.send(...ids.map((i) => publish(4, t4, i, `{"n":${i}}`)), PINGREQ);
  assert.equal((await d.read())?.type, 13, "PINGRESP");
  for (const i of ids) await puback(d, i);
  await waitFor(async () => (await version(node.httpUrl, "rm-4")) === 20);
  // still connected: a round trip goes through
  await d.send(PINGREQ);
  assert.equal((await d.read())?.type, 13);
  d.close();
  assert.equal(await version(node.httpUrl, "rm-4"), 20);
});
