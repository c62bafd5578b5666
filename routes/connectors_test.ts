import assert from "node:assert/strict";
import type { Connector } from "../src/ports/connector.ts";
import { connectorRoutes } from "./connectors.ts";

function fake(name: string, devices: number, status?: () => Record<string, unknown>) {
  return { name, devicesConnected: devices, status } as unknown as Connector;
}

Deno.test("GET /v1/connectors lists the node's connectors as they are when asked", async () => {
  const running: Connector[] = [fake("mqtt", 2)];
  const app = connectorRoutes(() => running);
  let res = await app.request("/");
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { connectors: [{ name: "mqtt", devicesConnected: 2 }] });
  running.push(fake("mqtt-bridge", 0, () => ({ connected: false })));
  res = await app.request("/");
  assert.deepEqual(await res.json(), {
    connectors: [
      { name: "mqtt", devicesConnected: 2 },
      { name: "mqtt-bridge", devicesConnected: 0, status: { connected: false } },
    ],
  });
});
