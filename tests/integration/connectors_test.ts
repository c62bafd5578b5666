/**
 * `GET /v1/connectors` on a real node: the embedded broker (with its listener and MQTT
 * versions) and the Sparkplug B host, with the devices connected right now.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { getJson, startNode, waitFor } from "../harness/mod.ts";

interface Listed {
  connectors: { name: string; devicesConnected: number; status?: Record<string, unknown> }[];
}

Deno.test("GET /v1/connectors: the node's connectors and their devices", async () => {
  await using node = await startNode();
  const list = async (): Promise<Listed> => {
    const res = await getJson(`${node.httpUrl}/v1/connectors`);
    assert.equal(res.status, 200);
    return res.body;
  };
  const first = await list();
  const names = first.connectors.map((c) => c.name);
  assert.ok(names.includes("mqtt"), JSON.stringify(first));
  assert.ok(names.includes("sparkplug"), JSON.stringify(first));
  const broker = first.connectors.find((c) => c.name === "mqtt")!;
  assert.equal(broker.devicesConnected, 0);
  assert.equal(broker.status?.port, Number(new URL(node.mqttUrl!).port));
  assert.deepEqual(broker.status?.protocols, ["mqtt 3.1", "mqtt 3.1.1", "mqtt 5"]);

  const device = await mqtt.connectAsync(node.mqttUrl!, {
    clientId: "con-1",
    protocolVersion: 5,
    reconnectPeriod: 0,
  });
  try {
    await device.publishAsync("twins/con-1/telemetry", JSON.stringify({ temp: 1 }), { qos: 1 });
    await waitFor(async () =>
      (await list()).connectors.find((c) => c.name === "mqtt")?.devicesConnected === 1
    );
  } finally {
    await device.endAsync();
  }
  await waitFor(async () =>
    (await list()).connectors.find((c) => c.name === "mqtt")?.devicesConnected === 0
  );
});
