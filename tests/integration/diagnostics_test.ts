/**
 * Diagnostics as an engineer uses them: a device sends, gets one message rejected, listens
 * for commands — then goes silent (its will says offline) with a command queued. Each time
 * `GET /v1/twins/{id}/diagnostics` tells what happened.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { getJson, startNode, waitFor } from "../harness/mod.ts";

Deno.test("diagnostics: a device before and after it goes silent", async () => {
  await using node = await startNode();
  const put = await fetch(`${node.httpUrl}/v1/twins/cnc-9`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ attributes: { type: "cnc", site: "A" } }),
  });
  assert.equal(put.status < 300, true, await put.text());

  const client = await mqtt.connectAsync(node.mqttUrl!, {
    clientId: "cnc-9-fw2.1",
    reconnectPeriod: 0,
    will: { topic: "twins/cnc-9/status", payload: Buffer.from("offline"), qos: 1, retain: false },
  });
  await client.subscribeAsync("twins/cnc-9/commands/+", { qos: 1 });
  await client.publishAsync("twins/cnc-9/status", "online", { qos: 1 });
  for (let i = 0; i < 5; i++) {
    await client.publishAsync("twins/cnc-9/telemetry", JSON.stringify({ rpm: 1000 + i }), {
      qos: 1,
    });
  }
  await client.publishAsync("twins/cnc-9/telemetry", "rpm=12", { qos: 1 }); // not JSON

  const url = `${node.httpUrl}/v1/twins/cnc-9/diagnostics`;
  const before = await getJson(url);
  assert.equal(before.status, 200, JSON.stringify(before.body));
  const d = before.body;
  assert.equal(d.twin, "cnc-9");
  assert.equal(d.connectivity.online, true);
  assert.equal(d.connectivity.reported.status, "online");
  assert.equal(d.connectivity.session.clientId, "cnc-9-fw2.1");
  assert.equal(d.connectivity.session.protocol, "mqtt 3.1.1");
  assert.equal(d.connectivity.session.listensForCommands, true);
  assert.ok(Date.now() - Date.parse(d.connectivity.lastSeen) < 10_000, d.connectivity.lastSeen);
  assert.equal(d.messages.total, 6, "1 status + 5 telemetry applied");
  assert.equal(d.messages.lastMinute + d.messages.previousMinute >= 1, true);
  assert.deepEqual(
    d.rejected.map((r: { reason: string; topic: string }) => [r.reason, r.topic]),
    [["not_json", "twins/cnc-9/telemetry"]],
  );
  assert.equal(d.actor.version, 7, "provisioning + 6 device messages");
  assert.equal(d.actor.resident, true);
  assert.equal(d.actor.mailboxDepth, 0);
  assert.equal(d.influx.configured, false);
  assert.match(d.summary, /1 recent messages rejected \(last: not_json\)/);
  await waitFor(async () => (await getJson(url)).body.snapshot.unpersistedChanges === 0);
  assert.equal((await getJson(url)).body.snapshot.persistedVersion, 7);

  // the device drops off the network: its will says offline; a command waits for it
  // deno-lint-ignore no-explicit-any
  (client as any).stream.destroy();
  await waitFor(async () => (await getJson(url)).body.connectivity.reported.status === "offline");
  const cmd = await getJson(`${node.httpUrl}/v1/twins/cnc-9/commands`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "dumpLogs" }),
  });
  assert.equal(cmd.status, 202);
  await new Promise((r) => setTimeout(r, 1100));
  const after = (await getJson(url)).body;
  assert.equal(after.connectivity.online, false);
  assert.equal(after.connectivity.session, null);
  assert.ok(after.connectivity.silentForSeconds >= 1, String(after.connectivity.silentForSeconds));
  assert.equal(after.messages.total, 7, "the will's offline was applied too");
  assert.deepEqual(
    after.commands.map((c: { name: string; status: string }) => [c.name, c.status]),
    [["dumpLogs", "pending"]],
  );
  assert.match(after.summary, /no MQTT session; the device said offline \d+ s ago/);
  assert.match(after.summary, /1 commands queued/);
  await client.endAsync(true).catch(() => {});

  const missing = await getJson(`${node.httpUrl}/v1/twins/nobody/diagnostics`);
  assert.equal(missing.status, 404);
  assert.equal(missing.body.error.code, "twin_not_found");
});

Deno.test("diagnostics: a gateway speaking for two devices; both sessions end with its connection", async () => {
  await using node = await startNode();
  for (const id of ["gw-a", "gw-b"]) {
    const r = await fetch(`${node.httpUrl}/v1/twins/${id}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ attributes: {} }),
    });
    assert.ok(r.status < 300, await r.text());
  }
  const gw = await mqtt.connectAsync(node.mqttUrl!, { clientId: "gateway-1", reconnectPeriod: 0 });
  for (const id of ["gw-a", "gw-b", "gw-a"]) {
    await gw.publishAsync(`twins/${id}/telemetry`, '{"v": 1}', { qos: 1 });
  }
  const diag = async (id: string) =>
    (await getJson(`${node.httpUrl}/v1/twins/${id}/diagnostics`)).body;
  for (const id of ["gw-a", "gw-b"]) {
    const d = await diag(id);
    assert.equal(d.connectivity.online, true, id);
    assert.equal(d.connectivity.session.clientId, "gateway-1");
  }
  await gw.endAsync();
  await waitFor(async () =>
    !(await diag("gw-a")).connectivity.online && !(await diag("gw-b")).connectivity.online
  );
});
