/**
 * MQTT limits: a device over its message rate is disconnected (its message not acknowledged,
 * so it resends after reconnecting); connections past the node's limit are refused.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { getJson, metric, startNode, waitFor } from "../harness/mod.ts";

Deno.test("limits: device message rate and connection count", async () => {
  await using node = await startNode({ TWINMILL_DEVICE_RATE: "5", TWINMILL_MAX_CONNECTIONS: "2" });
  const url = node.mqttUrl!;
  const a = await mqtt.connectAsync(url, { clientId: "fast", reconnectPeriod: 0 });
  const closed = new Promise<void>((r) => a.once("close", () => r()));
  // a burst of 10 is allowed (2 s worth), the rest is over the rate; unacknowledged
  // publishes stay pending in the client (it would resend them after reconnecting)
  let acked = 0;
  for (let i = 0; i < 40; i++) {
    a.publishAsync("twins/fast-1/telemetry", JSON.stringify({ i }), { qos: 1 })
      .then(() => acked++, () => {});
  }
  await closed;
  // the acknowledgements written before the close may be handled just after it
  await waitFor(() => acked >= 10, { timeoutMs: 5_000, message: "the first 10 acknowledged" })
    .catch(() => {});
  assert.ok(acked >= 10 && acked < 40, `${acked} of 40 acknowledged before the disconnect`);
  assert.ok((await metric(node, "twinmill_rate_limited_total")) >= 1);
  await waitFor(async () =>
    (await getJson(`${node.httpUrl}/v1/twins/fast-1`)).body.version === acked
  );
  a.end(true); // already closed by the node: endAsync would wait for a close that happened

  const b = await mqtt.connectAsync(url, { clientId: "b", reconnectPeriod: 0 });
  const c = await mqtt.connectAsync(url, { clientId: "c", reconnectPeriod: 0 });
  await assert.rejects(
    mqtt.connectAsync(url, { clientId: "d", reconnectPeriod: 0 }),
    /Server unavailable/,
  );
  await b.endAsync();
  await c.endAsync();
});
