/**
 * Adversarial, MQTT 5 (issue 17 added it, and delivers commands only on the device's PUBACK):
 * the command ACL, client ids bound to the identity and authentication failure throttling must
 * hold for MQTT 5 clients as they do for MQTT 3.1.1 ones (`command_acl_test.ts`,
 * `client_id_test.ts`, `auth_throttle_test.ts`).
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { getJson, json, metricBy, type NodeProcess, startNode, waitFor } from "../harness/mod.ts";

/** Provisions twins `ids` and returns their device tokens. */
async function provision(node: NodeProcess, ids: string[]): Promise<Record<string, string>> {
  const tokens: Record<string, string> = {};
  for (const id of ids) {
    const put = await getJson(`${node.httpUrl}/v1/twins/${id}`, json("PUT", { attributes: {} }));
    assert.equal(put.status, 201, JSON.stringify(put.body));
    const c = await getJson(`${node.httpUrl}/v1/twins/${id}/credentials`, json("POST"));
    assert.equal(c.status, 201, JSON.stringify(c.body));
    tokens[id] = c.body.credentials.token;
  }
  return tokens;
}

/** Connects as twin `user` with `clientId` over MQTT `version` (5 unless told). */
function connectAs(
  node: NodeProcess,
  tokens: Record<string, string>,
  user: string,
  clientId: string,
  version: 4 | 5 = 5,
): Promise<mqtt.MqttClient> {
  return mqtt.connectAsync(node.mqttUrl!, {
    clientId,
    username: user,
    password: tokens[user] ?? "wrong",
    protocolVersion: version,
    reconnectPeriod: 0,
    connectTimeout: 5000,
  });
}

Deno.test("MQTT 5: a device subscribed to another twin's commands receives none of them", async () => {
  await using node = await startNode({ TWINMILL_MQTT_AUTH: "on" });
  const tokens = await provision(node, ["tA", "tB"]);
  const queue = async (pin: string) => {
    const q = await getJson(
      `${node.httpUrl}/v1/twins/tB/commands`,
      json("POST", { name: "unlock", args: { pin }, mode: "async" }),
    );
    assert.equal(q.status, 202, JSON.stringify(q.body));
    return q.body.id as string;
  };
  const status = async (id: string) =>
    (await getJson(`${node.httpUrl}/v1/twins/tB/commands/${id}`)).body.status;
  const first = await queue("s3cr3t-pin");

  const thief = await connectAs(node, tokens, "tA", "tA");
  const stolen: string[] = [];
  thief.on("message", (topic, payload) => stolen.push(`${topic} ${payload}`));
  try {
    const granted = await thief.subscribeAsync(
      ["twins/tB/commands/+", "twins/tB/#", "twins/tB/commands/#", "twins/+/commands/+", "#"],
      { qos: 1 },
    ).then(
      (gs) => gs.map((g) => g.qos),
      (err) => (err.packet as { granted: number[] }).granted,
    );
    assert.deepEqual(granted, [0x87, 0x87, 0x87, 0x87, 0x87], "SUBACK 0x87 not authorized");
    // a round trip on the same connection: anything those subscriptions let through is here
    await thief.subscribeAsync("twins/tA/desired", { qos: 1 });
    assert.deepEqual(stolen, []);
    assert.equal(await status(first), "pending");

    // tB (MQTT 5) gets it, PUBACKs it and it is delivered; a second one while both listen too
    const owner = await connectAs(node, tokens, "tB", "tB");
    try {
      const got: string[] = [];
      owner.on("message", (topic, payload) => got.push(`${topic} ${payload}`));
      await owner.subscribeAsync("twins/tB/commands/+", { qos: 1 });
      await waitFor(() => got.length === 1, { message: "tB receives its command" });
      assert.ok(got[0].includes("s3cr3t-pin"));
      await waitFor(async () => await status(first) === "delivered");
      const second = await queue("2nd");
      await waitFor(() => got.length === 2, { message: "tB receives its second command" });
      await waitFor(async () => await status(second) === "delivered");
      await thief.subscribeAsync("twins/tA/desired", { qos: 1 });
      assert.deepEqual(stolen, []);
    } finally {
      await owner.endAsync(true);
    }
  } finally {
    await thief.endAsync(true);
  }
});

Deno.test("MQTT 5: another identity cannot take over a device's client id", async () => {
  await using node = await startNode({ TWINMILL_MQTT_AUTH: "on" });
  const tokens = await provision(node, ["tA", "tB"]);
  const victim = await connectAs(node, tokens, "tB", "tB");
  let victimClosed = false;
  victim.on("close", () => victimClosed = true);
  const old = await connectAs(node, tokens, "tB", "line-7-gateway", 4);
  try {
    // tA over MQTT 5 with the client id of tB's MQTT 5 and of its MQTT 3.1.1 connection;
    // tA over MQTT 3.1.1 with tB's MQTT 5 one: all refused, nobody pushed off
    for (const [id, v] of [["tB", 5], ["line-7-gateway", 5], ["tB", 4]] as const) {
      const code = await connectAs(node, tokens, "tA", id, v).then(
        () => assert.fail(`tA connected as ${id} over v${v}`),
        (err) => (err as { code?: number }).code,
      );
      assert.equal(code, v === 5 ? 0x87 : 5, `${id} v${v}: CONNACK not authorized`);
    }
    const reasons = await metricBy(node, "twinmill_mqtt_auth_failures_total", "reason");
    assert.equal(reasons.client_id_held_by_another_device, 3, JSON.stringify(reasons));
    await victim.publishAsync("twins/tB/reported", '{"a":1}', { qos: 1 });
    await old.publishAsync("twins/tB/reported", '{"b":1}', { qos: 1 });
    await waitFor(async () =>
      (await getJson(`${node.httpUrl}/v1/twins/tB`)).body.reported?.b === 1
    );
    assert.equal(victimClosed, false, "tB was not pushed off");
    assert.ok(victim.connected && old.connected);
    // the device itself may take its session over
    const again = await connectAs(node, tokens, "tB", "tB");
    await waitFor(() => victimClosed, { message: "tB's old connection replaced by its new one" });
    await again.endAsync(true);
  } finally {
    await victim.endAsync(true);
    await old.endAsync(true);
  }
});

Deno.test("MQTT 5: another identity cannot take a device's stored session (session expiry)", async () => {
  await using node = await startNode({ TWINMILL_MQTT_AUTH: "on" });
  const tokens = await provision(node, ["tA", "tB"]);
  const as = (user: string, clean: boolean) =>
    mqtt.connectAsync(node.mqttUrl!, {
      clientId: "press-b-session",
      clean,
      username: user,
      password: tokens[user],
      protocolVersion: 5,
      properties: { sessionExpiryInterval: 3600 },
      reconnectPeriod: 0,
    });
  // tB keeps an MQTT 5 session (expiry 1 h: kept while it is away) and goes offline
  const b = await as("tB", false);
  await b.subscribeAsync("twins/tB/desired", { qos: 1 });
  await b.endAsync();
  for (const clean of [false, true]) {
    const code = await as("tA", clean).then(
      () => assert.fail(`tA took tB's stored session (clean=${clean})`),
      (err) => (err as { code?: number }).code,
    );
    assert.equal(code, 0x87, `clean=${clean}: CONNACK not authorized`);
  }
  const back = await as("tB", false);
  assert.ok(back.connected);
  await back.endAsync(true);
});

Deno.test("MQTT 5: wrong passwords are throttled and counted", async () => {
  await using node = await startNode({ TWINMILL_MQTT_AUTH: "on" });
  await provision(node, ["tX"]);
  const attempt = () =>
    connectAs(node, {}, "tX", `guess-${crypto.randomUUID()}`).then(
      async (c) => {
        await c.endAsync(true);
        return "connected";
      },
      (err) => (err as { code?: number }).code,
    );
  const answers: (number | string | undefined)[] = [];
  for (let i = 0; i < 60; i += 20) {
    answers.push(...await Promise.all(Array.from({ length: 20 }, attempt)));
  }
  // CONNACK 0x86 bad user name or password while checked, then 0x88 server unavailable
  const checked = answers.filter((a) => a === 0x86).length;
  const unchecked = answers.filter((a) => a === 0x88).length;
  assert.equal(checked + unchecked, 60, JSON.stringify(answers));
  const by = await metricBy(node, "twinmill_mqtt_auth_throttled_total", "by");
  const throttled = (by.source ?? 0) + (by.identity ?? 0);
  const failed = (await metricBy(node, "twinmill_mqtt_auth_failures_total", "reason"))
    .bad_credentials ?? 0;
  assert.equal(failed, checked);
  assert.equal(throttled, unchecked, JSON.stringify(by));
  assert.ok(throttled >= 35, `${throttled} throttled of 60 (${failed} checked)`);
});
