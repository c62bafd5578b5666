/**
 * Zero-touch provisioning as a new device and an admin see it, against a real node with
 * device authentication on: an admin creates a provisioning key with a template; a device
 * with only that key provisions itself over MQTT (`$provision`, npm:mqtt) or over
 * `POST /v1/provision`, reconnects as itself with its new token and its telemetry lands on
 * its twin, which carries the template's attributes. Wrong, expired, exhausted and revoked
 * keys and denied ids are refused; every attempt is audited; no key or token is logged.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { getJson, type NodeProcess, publishQos1, startNode, waitFor } from "../harness/mod.ts";

const ADMIN = "admin-key-0123456789abcdef";
const auth = { authorization: `Bearer ${ADMIN}` };

const post = (body: unknown, headers: Record<string, string> = auth): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(body),
});

async function createKey(node: NodeProcess, spec: Record<string, unknown>) {
  const r = await getJson(`${node.httpUrl}/v1/provisioning-keys`, post(spec));
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body as { id: string; key: string; quota: number };
}

/** Provision over MQTT as a new device would: log in with the key, ask, read the answer. */
async function provisionOverMqtt(
  node: NodeProcess,
  clientId: string,
  key: string,
  request: unknown,
  // deno-lint-ignore no-explicit-any
): Promise<any> {
  const c = await mqtt.connectAsync(node.mqttUrl!, {
    clientId,
    username: "$provision",
    password: key,
    reconnectPeriod: 0,
  });
  try {
    const answer = new Promise<string>((resolve) =>
      c.on("message", (topic, payload) => {
        if (topic === `provision/${clientId}/response`) resolve(payload.toString());
      })
    );
    await c.subscribeAsync(`provision/${clientId}/response`, { qos: 1 });
    await c.publishAsync(`provision/${clientId}/request`, JSON.stringify(request), { qos: 1 });
    return JSON.parse(await answer);
  } finally {
    await c.endAsync(true);
  }
}

async function twin(node: NodeProcess, id: string) {
  return await getJson(`${node.httpUrl}/v1/twins/${id}`, { headers: auth });
}

Deno.test("zero-touch provisioning end to end, refusals, audit, no secret logged", async (t) => {
  await using node = await startNode({
    TWINMILL_MQTT_AUTH: "on",
    TWINMILL_API_KEYS: `${ADMIN}:admin`,
  });
  const secrets: string[] = [];
  const k = await createKey(node, {
    name: "line 3 presses",
    template: { type: "press", site: "plant-a", attributes: { line: "3" } },
    allow: ["press-*"],
    deny: ["press-13"],
    quota: 10,
  });
  secrets.push(k.key);
  assert.match(k.key, /^tmpk_[0-9a-f]{12}_/);

  await t.step("the key is listed without its secret; only admins may manage keys", async () => {
    const list = await getJson(`${node.httpUrl}/v1/provisioning-keys`, { headers: auth });
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.items.map((x: { id: string }) => x.id), [k.id]);
    assert.ok(!JSON.stringify(list.body).includes(k.key.slice(18)));
    const one = await getJson(`${node.httpUrl}/v1/provisioning-keys/${k.id}`, { headers: auth });
    assert.equal(one.body.used, 0);
    assert.equal(one.body.remaining, 10);
    const anon = await getJson(`${node.httpUrl}/v1/provisioning-keys`, post({ name: "x" }, {}));
    assert.equal(anon.status, 401);
  });

  await t.step("over MQTT: provision, reconnect as itself, telemetry lands", async () => {
    const a = await provisionOverMqtt(node, "press-1", k.key, {
      id: "press-1",
      attributes: { fw: "1.0.3", site: "somewhere-else" },
    });
    assert.equal(a.status, "ok", JSON.stringify(a));
    assert.equal(a.credentials.username, "press-1");
    assert.deepEqual(a.ignoredAttributes, ["site"]);
    assert.equal(a.mqtt.topics.telemetry, "twins/press-1/telemetry");
    secrets.push(a.credentials.token);

    // the provisioning login reaches nothing but its own request and response topics
    const p = await mqtt.connectAsync(node.mqttUrl!, {
      clientId: "press-x",
      username: "$provision",
      password: k.key,
      reconnectPeriod: 0,
    });
    try {
      const granted = await p.subscribeAsync(["twins/+/telemetry", "provision/press-1/response"])
        .then(() => [], (err) => err.packet.granted);
      assert.deepEqual(granted, [128, 128]);
    } finally {
      await p.endAsync(true);
    }

    const dev = await mqtt.connectAsync(node.mqttUrl!, {
      clientId: "press-1",
      username: "press-1",
      password: a.credentials.token,
      reconnectPeriod: 0,
    });
    try {
      await dev.publishAsync("twins/press-1/telemetry", '{"temp":21.5}', { qos: 1 });
    } finally {
      await dev.endAsync(true);
    }
    await waitFor(async () => (await twin(node, "press-1")).body.reported?.temp === 21.5);
    const tw = (await twin(node, "press-1")).body;
    assert.equal(tw.attributes.type, "press");
    assert.equal(tw.attributes.site, "plant-a", "the template wins over the device");
    assert.equal(tw.attributes.line, "3");
    assert.equal(tw.attributes.fw, "1.0.3");
    assert.equal(tw.attributes.provisionedBy, k.id);
  });

  await t.step("over HTTP: POST /v1/provision, then mosquitto_pub as the device", async () => {
    const r = await getJson(
      `${node.httpUrl}/v1/provision`,
      post({ id: "press-2", attributes: { fw: "2.0" } }, { authorization: `Bearer ${k.key}` }),
    );
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const token = r.body.credentials.token;
    secrets.push(token);
    const pub = await publishQos1(node, "twins/press-2/telemetry", '{"temp":30}', [
      ...["-i", "press-2", "-u", "press-2", "-P", token],
    ]);
    assert.equal(pub.code, 0, pub.stderr);
    await waitFor(async () => (await twin(node, "press-2")).body.reported?.temp === 30);
    assert.equal((await twin(node, "press-2")).body.attributes.site, "plant-a");
    const used = await getJson(`${node.httpUrl}/v1/provisioning-keys/${k.id}`, { headers: auth });
    assert.equal(used.body.used, 2);
  });

  await t.step("refused: wrong key, denied id, existing twin", async () => {
    await assert.rejects(
      mqtt.connectAsync(node.mqttUrl!, {
        clientId: "press-3",
        username: "$provision",
        password: "tmpk_000000000000_" + "A".repeat(43),
        reconnectPeriod: 0,
      }),
      (err: Error & { code?: number }) => err.code === 4,
      "CONNACK 4 for an unknown key",
    );
    const wrong = await getJson(
      `${node.httpUrl}/v1/provision`,
      post({ id: "press-3" }, { authorization: `Bearer ${k.key.slice(0, -2)}xx` }),
    );
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error.code, "provisioning_key_invalid");
    const none = await getJson(`${node.httpUrl}/v1/provision`, post({ id: "press-3" }, {}));
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, "provisioning_key_invalid");
    const admin = await getJson(`${node.httpUrl}/v1/provision`, post({ id: "press-3" }));
    assert.equal(admin.status, 401, "an API key is no provisioning key");

    const denied = await provisionOverMqtt(node, "press-13", k.key, { id: "press-13" });
    assert.equal(denied.error?.code, "device_not_allowed");
    const other = await provisionOverMqtt(node, "robot-1", k.key, {});
    assert.equal(other.error?.code, "device_not_allowed", "not on the allow-list");
    const again = await getJson(
      `${node.httpUrl}/v1/provision`,
      post({ id: "press-1" }, { authorization: `Bearer ${k.key}` }),
    );
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, "twin_exists");
    assert.equal((await twin(node, "press-13")).status, 404);
    assert.equal((await twin(node, "robot-1")).status, 404);
  });

  await t.step("refused: an exhausted quota", async () => {
    const one = await createKey(node, { name: "just one", quota: 1 });
    secrets.push(one.key);
    const first = await provisionOverMqtt(node, "sensor-1", one.key, {});
    assert.equal(first.status, "ok");
    secrets.push(first.credentials.token);
    const second = await provisionOverMqtt(node, "sensor-2", one.key, {});
    assert.equal(second.error?.code, "provisioning_quota_exhausted");
    const http = await getJson(
      `${node.httpUrl}/v1/provision`,
      post({ id: "sensor-3" }, { authorization: `Bearer ${one.key}` }),
    );
    assert.equal(http.status, 403);
    assert.equal(http.body.error.code, "provisioning_quota_exhausted");
    assert.equal((await twin(node, "sensor-2")).status, 404);
  });

  await t.step("refused: an expired key, a revoked key", async () => {
    const expiresAt = Date.now() + 1500;
    const short = await createKey(node, {
      name: "short-lived",
      expiresAt: new Date(expiresAt).toISOString(),
    });
    secrets.push(short.key);
    await waitFor(() => Date.now() > expiresAt + 50, { timeoutMs: 5000 });
    await assert.rejects(
      mqtt.connectAsync(node.mqttUrl!, {
        clientId: "late-1",
        username: "$provision",
        password: short.key,
        reconnectPeriod: 0,
      }),
      (err: Error & { code?: number }) => err.code === 4,
    );
    const http = await getJson(
      `${node.httpUrl}/v1/provision`,
      post({ id: "late-1" }, { authorization: `Bearer ${short.key}` }),
    );
    assert.equal(http.status, 401);
    assert.equal(http.body.error.code, "provisioning_key_expired");
    const view = await getJson(`${node.httpUrl}/v1/provisioning-keys/${short.id}`, {
      headers: auth,
    });
    assert.equal(view.body.expired, true);

    const del = await fetch(`${node.httpUrl}/v1/provisioning-keys/${short.id}`, {
      method: "DELETE",
      headers: auth,
    });
    assert.equal(del.status, 204);
    const gone = await getJson(
      `${node.httpUrl}/v1/provision`,
      post({ id: "late-1" }, { authorization: `Bearer ${short.key}` }),
    );
    assert.equal(gone.body.error.code, "provisioning_key_invalid");
  });

  await t.step("every attempt is audited; no key or token in the log or the audit", async () => {
    const audit = await getJson(`${node.httpUrl}/v1/audit?action=provision&limit=1000`, {
      headers: auth,
    });
    assert.equal(audit.status, 200);
    // deno-lint-ignore no-explicit-any
    const items: any[] = audit.body.items;
    const ok = items.filter((e) => e.result === "ok").map((e) => e.target).sort();
    assert.deepEqual(ok, ["press-1", "press-2", "sensor-1"]);
    assert.ok(items.every((e) => e.actor.startsWith("provisioning-key:")));
    const codes = new Set(items.filter((e) => e.result === "denied").map((e) => e.detail.code));
    for (
      const code of [
        "provisioning_key_invalid",
        "provisioning_key_expired",
        "provisioning_quota_exhausted",
        "device_not_allowed",
        "twin_exists",
      ]
    ) assert.ok(codes.has(code), `an audited ${code}: ${[...codes]}`);
    const keyAudit = await getJson(`${node.httpUrl}/v1/audit?action=provisioning-keys.&limit=100`, {
      headers: auth,
    });
    assert.ok(keyAudit.body.items.length >= 4, "key creation and revocation are audited");
    const all = await getJson(`${node.httpUrl}/v1/audit?limit=1000`, { headers: auth });
    const text = JSON.stringify(all.body);
    for (const s of secrets) {
      assert.ok(!text.includes(s), "a secret in the audit log");
      assert.ok(!node.logs.some((l) => l.includes(s)), "a secret in the node log");
    }
  });
});

Deno.test("provisioning over MQTT: the answer reaches only the asking client (no device auth)", async () => {
  await using node = await startNode({ TWINMILL_MQTT_AUTH: "off" });
  const k = await createKey(node, { name: "open floor", quota: 5 });
  const spy = await mqtt.connectAsync(node.mqttUrl!, { clientId: "spy", reconnectPeriod: 0 });
  try {
    const heard: string[] = [];
    // (the Sparkplug host's retained STATE aside)
    spy.on("message", (topic, payload) => {
      if (!topic.startsWith("spBv1.0/STATE/")) heard.push(`${topic} ${payload}`);
    });
    await spy.subscribeAsync(["#", "provision/+/response"], { qos: 1 });
    const a = await provisionOverMqtt(node, "meter-1", k.key, {});
    assert.equal(a.status, "ok");
    // a marker published after the answer: once the spy has it, it would have had the answer
    const marker = await mqtt.connectAsync(node.mqttUrl!, { clientId: "m", reconnectPeriod: 0 });
    await marker.publishAsync("twins/marker-1/telemetry", '{"x":1}', { qos: 1 });
    await marker.endAsync(true);
    await waitFor(() => heard.some((h) => h.startsWith("twins/marker-1/")));
    assert.deepEqual(heard, ['twins/marker-1/telemetry {"x":1}']);
  } finally {
    await spy.endAsync(true);
  }
});
