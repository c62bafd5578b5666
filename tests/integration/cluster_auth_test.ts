/**
 * Device authentication in cluster mode: a token issued through one node logs a device in on
 * another; the ACL applies there too; a revocation made through the first node disconnects
 * the device on the second at once; the audit log (a JetStream stream) is read through any node.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { getJson, startNats, startNode, waitFor } from "../harness/mod.ts";

Deno.test("cluster auth: credentials and revocation reach every node", async () => {
  await using nats = await startNats({ jetstream: true });
  const env = { NATS_URL: nats.url, TWINMILL_SHARDS: "8", TWINMILL_MQTT_AUTH: "on" };
  await using n1 = await startNode({ ...env, TWINMILL_NODE_ID: "a1" });
  await using n2 = await startNode({ ...env, TWINMILL_NODE_ID: "a2" });
  await waitFor(async () => {
    const c = (await getJson(`${n1.httpUrl}/v1/cluster`)).body;
    return c.settled && c.nodes.length === 2;
  }, { timeoutMs: 30_000, message: "two nodes" });

  const put = await getJson(`${n1.httpUrl}/v1/twins/line-1`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: '{"attributes":{}}',
  });
  assert.equal(put.status, 201);
  const cred = await getJson(`${n1.httpUrl}/v1/twins/line-1/credentials`, { method: "POST" });
  assert.equal(cred.status, 201);
  const token = cred.body.credentials.token;

  // the device logs in on the other node
  const dev = await mqtt.connectAsync(n2.mqttUrl!, {
    username: "line-1",
    password: token,
    reconnectPeriod: 0,
  });
  await dev.publishAsync("twins/line-1/telemetry", '{"speed":3}', { qos: 1 });
  await dev.publishAsync("twins/line-2/telemetry", '{"speed":9}', { qos: 1 });
  await waitFor(async () => (await getJson(`${n1.httpUrl}/v1/twins/line-1`)).body.version === 2);
  assert.equal((await getJson(`${n1.httpUrl}/v1/twins/line-2`)).status, 404, "ACL on node 2");

  // revoked through node 1: the device on node 2 is dropped and cannot come back
  const closed = new Promise<void>((r) => dev.once("close", () => r()));
  const del = await fetch(`${n1.httpUrl}/v1/twins/line-1/credentials/${cred.body.id}`, {
    method: "DELETE",
  });
  assert.equal(del.status, 204);
  await closed;
  await assert.rejects(
    mqtt.connectAsync(n2.mqttUrl!, { username: "line-1", password: token, reconnectPeriod: 0 }),
    /Bad username or password/,
  );
  dev.end(true);

  // the audit log is cluster-wide: node 2 lists what was done through node 1, and node 1
  // lists the refused connect on node 2
  const a2 = await getJson(`${n2.httpUrl}/v1/audit?action=credential.&limit=10`);
  // deno-lint-ignore no-explicit-any
  assert.deepEqual(a2.body.items.map((e: any) => e.action).sort(), [
    "credential.create",
    "credential.revoke",
  ]);
  await waitFor(async () => {
    const a1 = await getJson(`${n1.httpUrl}/v1/audit?action=mqtt.auth_failure&limit=10`);
    return a1.body.items.length >= 1;
  }, { message: "node 2's refused connect in the audit read through node 1" });
  for (const n of [n1, n2]) assert.ok(!n.logs.some((l) => l.includes(token)));
});
