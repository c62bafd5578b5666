/**
 * Adversarial: a device must not push another off. With device auth on, connecting as user tA
 * with client id tB used to close tB's connection (MQTT session takeover across identities).
 * A session now belongs to the identity that holds it: a client id held by another twin's
 * connection is refused with CONNACK 5 (not authorized) and the holder stays connected; the
 * client id equal to a twin id is that twin's own, which takes it back from anyone.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { getJson, json, metricBy, startNode, waitFor } from "../harness/mod.ts";

Deno.test("client id: another identity cannot take over a device's session", async () => {
  await using node = await startNode({ TWINMILL_MQTT_AUTH: "on" });
  const tokens: Record<string, string> = {};
  for (const id of ["tA", "tB"]) {
    assert.equal(
      (await getJson(`${node.httpUrl}/v1/twins/${id}`, json("PUT", { attributes: {} }))).status,
      201,
    );
    tokens[id] = (await getJson(`${node.httpUrl}/v1/twins/${id}/credentials`, json("POST"))).body
      .credentials.token;
  }
  const as = (user: string, clientId: string) =>
    mqtt.connectAsync(node.mqttUrl!, {
      clientId,
      username: user,
      password: tokens[user],
      reconnectPeriod: 0,
    });

  const victim = await as("tB", "tB");
  let victimClosed = false;
  victim.on("close", () => victimClosed = true);
  const gw = await as("tB", "line-7-gateway");
  try {
    // tA with tB's client id, and with a client id tB's other connection holds: refused
    for (const id of ["tB", "line-7-gateway"]) {
      await assert.rejects(as("tA", id), /Not authorized/, `tA as client id ${id}`);
    }
    const reasons = await metricBy(node, "twinmill_mqtt_auth_failures_total", "reason");
    assert.equal(reasons.client_id_held_by_another_device, 2, JSON.stringify(reasons));
    // both of tB's connections still work
    await victim.publishAsync("twins/tB/reported", '{"a":1}', { qos: 1 });
    await gw.publishAsync("twins/tB/reported", '{"b":1}', { qos: 1 });
    await waitFor(async () =>
      (await getJson(`${node.httpUrl}/v1/twins/tB`)).body.reported?.b === 1
    );
    assert.equal(victimClosed, false, "tB was not pushed off");
    assert.ok(victim.connected && gw.connected);

    // the same identity may still take its own session over (a device reconnecting)
    const again = await as("tB", "tB");
    await waitFor(() => victimClosed, { message: "tB's old connection replaced by its new one" });
    await again.endAsync(true);

    // a client id nobody holds is fine; its own twin id reclaims it from a squatter
    const squatter = await as("tA", "tB");
    let squatterClosed = false;
    squatter.on("close", () => squatterClosed = true);
    const owner = await as("tB", "tB");
    await waitFor(() => squatterClosed, { message: "tB takes its own client id back" });
    await owner.endAsync(true);
    await squatter.endAsync(true);
  } finally {
    await victim.endAsync(true);
    await gw.endAsync(true);
  }
});

Deno.test("client id: another identity cannot take a device's stored persistent session", async () => {
  await using node = await startNode({ TWINMILL_MQTT_AUTH: "on" });
  const tokens: Record<string, string> = {};
  for (const id of ["tA", "tB"]) {
    await getJson(`${node.httpUrl}/v1/twins/${id}`, json("PUT", { attributes: {} }));
    tokens[id] = (await getJson(`${node.httpUrl}/v1/twins/${id}/credentials`, json("POST"))).body
      .credentials.token;
  }
  const as = (user: string, clientId: string, clean: boolean) =>
    mqtt.connectAsync(node.mqttUrl!, {
      clientId,
      clean,
      username: user,
      password: tokens[user],
      reconnectPeriod: 0,
    });
  // tB keeps a persistent session (its desired state and commands) and goes offline
  const b = await as("tB", "press-b-session", false);
  await b.subscribeAsync("twins/tB/desired", { qos: 1 });
  await b.endAsync();
  // tA asks for that session, clean or not: refused while it is stored
  for (const clean of [false, true]) {
    await assert.rejects(as("tA", "press-b-session", clean), /Not authorized/, `clean=${clean}`);
  }
  // tB gets it back
  const back = await as("tB", "press-b-session", false);
  assert.ok(back.connected);
  await back.endAsync(true);
});
