/**
 * Diagnostics as an engineer uses them: a device sends, gets one message rejected, listens
 * for commands — then goes silent (its will says offline) with a command queued. Each time
 * `GET /v1/twins/{id}/diagnostics` tells what happened.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import {
  getJson,
  mosquittoPub,
  publishQos1,
  startNats,
  startNode,
  waitFor,
} from "../harness/mod.ts";
import { sharedBy } from "../harness/cluster_wait.ts";
import { shardOf } from "../../src/sharding/shard.ts";

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
  // silence is counted in whole seconds: wait until the twin reports one
  const after = await waitFor(async () => {
    const body = (await getJson(url)).body;
    return body.connectivity.silentForSeconds >= 1 && body;
  }, { message: "the twin reports at least 1 s of silence" });
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

Deno.test("diagnostics: a device that only sends bad data is explained before its twin exists", async () => {
  await using node = await startNode();
  const diag = (id: string) => getJson(`${node.httpUrl}/v1/twins/${id}/diagnostics`);
  // as in the README: QoS 0, a nested object (refused: fields are numbers, booleans, strings)
  const pub = await mosquittoPub([
    "-h",
    "127.0.0.1",
    "-p",
    String(node.mqttPort),
    "-t",
    "twins/cnc-10/telemetry",
    "-m",
    '{"a":{"b":1}}',
  ]);
  assert.equal(pub.code, 0, pub.stderr);
  await waitFor(async () => (await diag("cnc-10")).status === 200, {
    message: "diagnostics of cnc-10 answer",
  });
  const d = (await diag("cnc-10")).body;
  assert.equal(d.twin, "cnc-10");
  assert.equal(d.exists, false);
  assert.equal(d.actor, null);
  assert.equal(d.snapshot, null);
  assert.equal(d.messages.total, 0);
  assert.equal(d.connectivity.online, false);
  assert.equal(d.rejected.length, 1);
  const [r] = d.rejected;
  assert.equal(r.reason, "bad_field");
  assert.equal(r.topic, "twins/cnc-10/telemetry");
  assert.match(r.explanation, /nested objects/);
  assert.ok(Math.abs(Date.now() - Date.parse(r.at)) < 10_000, r.at);
  assert.match(d.summary, /^the twin does not exist yet/);
  assert.match(d.summary, /1 recent messages rejected \(last: bad_field\)/);
  assert.equal((await getJson(`${node.httpUrl}/v1/twins/cnc-10`)).status, 404, "not created");

  // a typo in the topic is shown on the twin the topic names
  const typo = await publishQos1(node, "twins/cnc-11/telemetri", '{"rpm": 1}');
  assert.equal(typo.code, 0, typo.stderr);
  const t = (await diag("cnc-11")).body;
  assert.equal(t.exists, false);
  assert.deepEqual(
    t.rejected.map((x: { reason: string; topic: string }) => [x.reason, x.topic]),
    [["bad_topic", "twins/cnc-11/telemetri"]],
  );

  // once a message is accepted the twin exists; the rejections stay in its diagnostics
  assert.equal((await publishQos1(node, "twins/cnc-10/telemetry", '{"a": 1}')).code, 0);
  const after = (await diag("cnc-10")).body;
  assert.equal(after.exists, true);
  assert.equal(after.actor.version, 1);
  assert.equal(after.rejected.length, 1);

  // an id no node knows (never rejected, no session) is still not found
  const missing = await diag("cnc-12");
  assert.equal(missing.status, 404);
  assert.equal(missing.body.error.code, "twin_not_found");
});

Deno.test("diagnostics (cluster): rejections on one node are explained by every node", async () => {
  await using nats = await startNats({ jetstream: true });
  const env = { NATS_URL: nats.url, TWINMILL_SHARDS: "8" };
  await using n1 = await startNode({ ...env, TWINMILL_NODE_ID: "d1" });
  await using n2 = await startNode({ ...env, TWINMILL_NODE_ID: "d2" });
  const owners = await sharedBy(n1, 2);
  // a twin owned by d1, whose device publishes to d2
  const d1Shards = owners!.find((n) => n.id === "d1")!.shards;
  const id = Array.from({ length: 100 }, (_, i) => `cnc-c${i}`)
    .find((x) => d1Shards.includes(shardOf(x, 8)))!;
  const pub = await publishQos1(n2, `twins/${id}/telemetry`, '{"a":{"b":1}}');
  assert.equal(pub.code, 0, pub.stderr);
  for (const node of [n1, n2]) {
    const d = await getJson(`${node.httpUrl}/v1/twins/${id}/diagnostics`);
    assert.equal(d.status, 200, JSON.stringify(d.body));
    assert.equal(d.body.exists, false);
    assert.deepEqual(
      d.body.rejected.map((x: { reason: string; node: string }) => [x.reason, x.node]),
      [["bad_field", "d2"]],
    );
  }
  const missing = await getJson(`${n1.httpUrl}/v1/twins/cnc-nobody/diagnostics`);
  assert.equal(missing.status, 404);
});
