/**
 * Device authentication and the MQTT ACL, as an attacker and as a device would see them:
 * anonymous and wrong-token connects refused; a device touching another twin's topics or `#`
 * gets nothing through; its own topics work; a revoked credential is disconnected at once
 * and refused afterwards; no token ever reaches a log line.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { getJson, json, metric, publishQos1, startNode, waitFor } from "../harness/mod.ts";

Deno.test("device auth: tokens, refused connects, ACL on topics, revocation, no secret logged", async () => {
  await using node = await startNode({ TWINMILL_MQTT_AUTH: "on" });
  const url = node.mqttUrl!;
  for (const id of ["press-1", "press-2"]) {
    assert.equal(
      (await getJson(`${node.httpUrl}/v1/twins/${id}`, json("PUT", { attributes: {} }))).status,
      201,
    );
  }
  const issued = await getJson(`${node.httpUrl}/v1/twins/press-1/credentials`, json("POST"));
  assert.equal(issued.status, 201, JSON.stringify(issued.body));
  const { id: credId, credentials } = issued.body;
  assert.equal(credentials.username, "press-1");
  assert.ok(credentials.token.length >= 22, "at least 128 bits");
  const token: string = credentials.token;
  const other = (await getJson(`${node.httpUrl}/v1/twins/press-2/credentials`, json("POST"))).body;
  assert.notEqual(other.credentials.token, token);
  assert.equal(
    (await getJson(`${node.httpUrl}/v1/twins/ghost/credentials`, json("POST"))).status,
    404,
    "no credentials for a twin that does not exist",
  );

  // anonymous and wrong tokens are refused at CONNECT
  const anon = await publishQos1(node, "twins/press-1/telemetry", '{"t":1}');
  assert.notEqual(anon.code, 0, "anonymous publish refused");
  await assert.rejects(
    mqtt.connectAsync(url, { username: "press-1", password: "wrong", reconnectPeriod: 0 }),
    /Bad username or password/,
  );
  await assert.rejects(
    mqtt.connectAsync(url, { username: "press-2", password: token, reconnectPeriod: 0 }),
    /Bad username or password/,
    "press-1's token is not press-2's",
  );
  assert.ok((await metric(node, "twinmill_mqtt_auth_failures_total")) >= 3);

  // the device itself
  const dev = await mqtt.connectAsync(url, {
    clientId: "press-1-dev",
    username: "press-1",
    password: token,
    reconnectPeriod: 0,
  });
  try {
    await dev.publishAsync("twins/press-1/telemetry", '{"temp":20}', { qos: 1 });
    // another twin's topics and wildcards: acknowledged (MQTT 3.1.1) but dropped
    await dev.publishAsync("twins/press-2/telemetry", '{"temp":99}', { qos: 1 });
    await dev.publishAsync("twins/press-1/desired", '{"evil":1}', { qos: 1 });
    // mqtt.js rejects a SUBACK holding a refusal; the packet tells each filter's result
    const suback = await dev.subscribeAsync([
      "twins/press-1/desired",
      "twins/press-1/commands/+",
      "#",
      "twins/+/telemetry",
      "twins/press-2/desired",
    ], { qos: 1 }).then(
      () => assert.fail("some subscriptions must be refused"),
      (err) => err.packet as { granted: number[] },
    );
    assert.deepEqual(suback.granted, [1, 1, 128, 128, 128]);
    await waitFor(async () =>
      (await getJson(`${node.httpUrl}/v1/twins/press-1`)).body.version === 2
    );
    const p2 = await getJson(`${node.httpUrl}/v1/twins/press-2`);
    assert.equal(p2.body.version, 1, "nothing reached press-2");
    assert.deepEqual(p2.body.reported, {});
    assert.deepEqual((await getJson(`${node.httpUrl}/v1/twins/press-1`)).body.desired, {});
    // another twin's telemetry and 3 subscriptions; a publish to `desired` (the twin's own
    // downlink topic) is no device topic at all: rejected as bad_topic before the ACL
    assert.equal(await metric(node, "twinmill_mqtt_acl_denials_total"), 4);

    // listed without the token, with its last use
    const list = await getJson(`${node.httpUrl}/v1/twins/press-1/credentials`);
    assert.equal(list.body.items.length, 1);
    assert.equal(list.body.items[0].id, credId);
    assert.ok(list.body.items[0].lastUsedAt);
    assert.ok(!JSON.stringify(list.body).includes(token));

    // revocation disconnects at once and refuses the next connect
    const closed = new Promise<void>((r) => dev.once("close", () => r()));
    const del = await fetch(`${node.httpUrl}/v1/twins/press-1/credentials/${credId}`, {
      method: "DELETE",
    });
    assert.equal(del.status, 204);
    await closed;
    await assert.rejects(
      mqtt.connectAsync(url, { username: "press-1", password: token, reconnectPeriod: 0 }),
      /Bad username or password/,
    );
    const again = await fetch(`${node.httpUrl}/v1/twins/press-1/credentials/${credId}`, {
      method: "DELETE",
    });
    assert.equal(again.status, 404);
    await again.body?.cancel();
  } finally {
    await dev.endAsync(true);
  }
  // refused connects and ACL denials are in the audit log
  const audit = await getJson(`${node.httpUrl}/v1/audit?action=mqtt.&limit=1000`);
  // deno-lint-ignore no-explicit-any
  const kinds = new Set(audit.body.items.map((e: any) => e.action));
  assert.deepEqual([...kinds].sort(), ["mqtt.acl_denied", "mqtt.auth_failure"]);
  for (const secret of [token, other.credentials.token]) {
    assert.ok(!node.logs.some((l) => l.includes(secret)), "a token appears in the log");
  }
});
