/**
 * `TWINMILL_DESIRED_EXPIRY`: the retained desired state carries an MQTT 5 Message Expiry
 * Interval; a device subscribing in time gets it with the time left, one subscribing later gets
 * nothing retained (the broker dropped it).
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { findBinary, getJson, json, startNode, waitFor } from "../harness/mod.ts";

/** The retained desired state a fresh MQTT 5 subscriber gets within 1 s, or null. */
async function retainedDesired(mqttUrl: string, twin: string): Promise<string | null> {
  const u = new URL(mqttUrl);
  const out = await new Deno.Command(findBinary("mosquitto_sub", "mosquitto-clients"), {
    args: ["-V", "5", "-h", u.hostname, "-p", u.port, "-t", `twins/${twin}/desired`, "-C", "1"]
      .concat(["-W", "1", "-q", "1"]),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  return out.code === 0 && text !== "" ? text : null;
}

Deno.test("mqtt5: the retained desired state expires after TWINMILL_DESIRED_EXPIRY", async () => {
  await using node = await startNode({ TWINMILL_DESIRED_EXPIRY: "2" });
  const put = await getJson(
    `${node.httpUrl}/v1/twins/exp-1`,
    json("PUT", { attributes: { type: "press" } }),
  );
  assert.ok(put.status < 300, JSON.stringify(put.body));
  const patch = await getJson(
    `${node.httpUrl}/v1/twins/exp-1/desired`,
    json("PATCH", { speed: 90 }),
  );
  assert.equal(patch.status, 200, JSON.stringify(patch.body));

  const sub = await mqtt.connectAsync(node.mqttUrl!, {
    clientId: "exp-watch",
    protocolVersion: 5,
    reconnectPeriod: 0,
  });
  try {
    const got = new Promise<mqtt.IPublishPacket>((resolve) =>
      sub.on("message", (_t, _p, packet) => resolve(packet))
    );
    await sub.subscribeAsync("twins/exp-1/desired", { qos: 1 });
    const packet = await got;
    assert.equal(packet.retain, true);
    assert.deepEqual(JSON.parse(packet.payload.toString()), { speed: 90 });
    const left = packet.properties?.messageExpiryInterval;
    assert.ok(left !== undefined && left >= 1 && left <= 2, `expiry interval ${left}`);
  } finally {
    await sub.endAsync();
  }
  // once the 2 s are over, a new subscriber gets no retained desired state
  await waitFor(async () => (await retainedDesired(node.mqttUrl!, "exp-1")) === null, {
    timeoutMs: 15_000,
  });
});
