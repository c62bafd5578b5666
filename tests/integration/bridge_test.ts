/**
 * The bridge from a plant's broker (`TWINMILL_MQTT_URL`) against a real mosquitto 2: devices
 * publish to mosquitto, a real node (`main.ts`) bridges; versions are exact through a
 * `kill -9` of the node mid-burst and through a broker restart; downlink goes back through
 * mosquitto (retained desired state, commands and their results).
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import {
  findBinary,
  getJson,
  json,
  metric,
  metricBy,
  type MosquittoServer,
  type NodeProcess,
  publishQos1,
  runNode,
  startMosquitto,
  startNode,
  twinOrNull,
  waitFor,
} from "../harness/mod.ts";

type Twin = { version: number; reported: Record<string, unknown> };

const twin = (base: string, id: string) => twinOrNull<Twin>(base, id);

/** A bridged node on `broker`, resolved once its subscriptions are granted. */
async function bridgedNode(
  broker: MosquittoServer,
  env: Record<string, string> = {},
): Promise<NodeProcess> {
  const node = await startNode({ TWINMILL_MQTT_URL: broker.url, ...env });
  await node.waitForLog((r) => r.msg === "bridge subscribed", 15_000);
  return node;
}

/** Publish `n` QoS 1 telemetry messages per twin to the broker; resolves on the last PUBACK. */
async function burst(url: string, twins: string[], from: number, to: number) {
  const c = await mqtt.connectAsync(url, { clientId: `dev-${crypto.randomUUID()}` });
  try {
    const all: Promise<unknown>[] = [];
    for (let i = from; i <= to; i++) {
      for (const t of twins) {
        const body = JSON.stringify({ seq: i, temp: 20 + i / 10 });
        all.push(c.publishAsync(`twins/${t}/telemetry`, body, { qos: 1 }));
      }
    }
    await Promise.all(all);
  } finally {
    await c.endAsync();
  }
}

/** Every twin reaches `n` (within the deadline), then is exactly at version `n`, `seq` = `n`. */
async function exactly(node: NodeProcess, twins: string[], n: number) {
  for (const id of twins) {
    const t = await waitFor(async () => {
      const t = await twin(node.httpUrl, id);
      return t && t.version >= n ? t : null;
    }, { message: `twin ${id} reaches version ${n}`, timeoutMs: 60_000 });
    assert.equal(t!.version, n, `exact version of ${id}`);
    assert.equal(t!.reported.seq, n);
  }
}

/** mosquitto keeping every message queued for the bridge while it is away. */
const plantBroker = (persistence = false) =>
  startMosquitto({ persistence, config: ["max_queued_messages 100000"] });

Deno.test("bridge: devices on the plant's mosquitto update twins (versions exact); the embedded broker still serves local devices; bad payloads are counted", async () => {
  await using broker = await plantBroker();
  await using node = await bridgedNode(broker);
  const twins = ["b1", "b2", "b3"];
  await burst(broker.url, twins, 1, 200);
  await exactly(node, twins, 200);
  // a local device on the embedded broker, beside the bridge
  const local = await publishQos1(node, "twins/local-1/telemetry", '{"seq":1}');
  assert.equal(local.code, 0, local.stderr);
  await waitFor(async () => (await twin(node.httpUrl, "local-1"))?.version === 1);
  // bad payloads through the bridge: acknowledged by the broker, rejected and counted here
  const plant = { mqttPort: broker.port };
  const bad = await publishQos1(plant, "twins/bad-1/telemetry", "not json");
  assert.equal(bad.code, 0, bad.stderr);
  const array = await publishQos1(plant, "twins/bad-1/telemetry", "[1]");
  assert.equal(array.code, 0, array.stderr);
  await waitFor(async () => (await metric(node, "twinmill_mqtt_messages_rejected_total")) >= 2, {
    message: "rejections counted",
  });
  assert.equal(await twin(node.httpUrl, "bad-1"), null);
  await waitFor(() => node.logs.some((l) => l.includes("device message rejected")));
  assert.equal(await metric(node, "twinmill_bridge_connected"), 1);
  // every PUBLISH acknowledged, the rejected ones too (and Sparkplug's own STATE, if on)
  let seen: number[] = [];
  await waitFor(async () => {
    seen = [
      await metric(node, "twinmill_bridge_messages_received_total"),
      await metric(node, "twinmill_bridge_acks_total"),
    ];
    return seen[0] >= 602 && seen[0] === seen[1];
  }, { message: "every PUBLISH acknowledged" }).catch((err) => {
    throw new Error(`${err.message}: received, acknowledged ${seen}`);
  });
});

Deno.test("bridge: desired state reaches the plant's broker retained; a command reaches a subscriber there and its result comes back", async () => {
  await using broker = await plantBroker();
  await using node = await bridgedNode(broker, { TWINMILL_MQTT_PORT: "off" });
  assert.equal(node.mqttPort, undefined);
  const put = await fetch(`${node.httpUrl}/v1/twins/d1`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: '{"attributes":{"site":"A"}}',
  });
  assert.equal(put.status, 201);
  await put.body?.cancel();
  const patch = await fetch(`${node.httpUrl}/v1/twins/d1/desired`, {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: '{"speed":7}',
  });
  assert.equal(patch.status, 200);
  await patch.body?.cancel();
  // retained: a subscriber that comes later gets it
  const desired = await waitFor(async () => {
    const out = await new Deno.Command("mosquitto_sub", {
      args: ["-p", String(broker.port), "-t", "twins/d1/desired", "-C", "1", "-W", "2"],
      stdout: "piped",
      stderr: "null",
    }).output();
    return new TextDecoder().decode(out.stdout).trim();
  }, { message: "retained desired state on the plant's broker" });
  assert.equal(desired, '{"speed":7}');

  // the device on the plant's broker answers every command
  const device = await mqtt.connectAsync(broker.url, { clientId: "d1-device" });
  try {
    device.on("message", (topic, payload) => {
      const cmd = JSON.parse(String(payload));
      device.publish(
        `${topic}/result`,
        JSON.stringify({ status: "ok", result: { echo: cmd.name } }),
        { qos: 1 },
      );
    });
    await device.subscribeAsync("twins/d1/commands/+", { qos: 1 });
    const res = await fetch(`${node.httpUrl}/v1/twins/d1/commands`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"name":"reboot","mode":"sync","timeoutMs":10000}',
    });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.status, "succeeded");
    assert.deepEqual(body.result, { echo: "reboot" });
  } finally {
    await device.endAsync();
  }
  const published = await metricBy(node, "twinmill_bridge_messages_published_total", "kind");
  assert.ok(published.desired >= 1 && published.command === 1, JSON.stringify(published));
});

Deno.test("bridge: kill -9 of the node mid-burst, restart: the broker redelivers, every twin at exactly N", async () => {
  await using broker = await plantBroker();
  const env = { TWINMILL_MQTT_PORT: "off", TWINMILL_MQTT_CLIENT_ID: "twinmill-kill-test" };
  await using node = await bridgedNode(broker, env);
  const twins = ["k1", "k2", "k3", "k4"];
  const n = 1000;
  // the broker acknowledges the devices at once and queues for the node
  const sent = burst(broker.url, twins, 1, n);
  await waitFor(async () => (await metric(node, "twinmill_bridge_acks_total")) >= 400, {
    message: "the node is part way through the burst",
    intervalMs: 5,
    timeoutMs: 30_000,
  });
  assert.equal(await node.kill("SIGKILL"), 137);
  await sent;
  await using again = await node.restart();
  await again.waitForLog((r) => r.msg === "bridge connected" && r.sessionPresent === true);
  await exactly(again, twins, n);
  // the messages in flight at the kill came again (DUP); the ones durable before it were skipped
  const got = await metricBy(again, "twinmill_bridge_messages_received_total", "redelivered");
  assert.ok((got.true ?? 0) > 0, JSON.stringify(got));
});

Deno.test("bridge: the plant's broker restarts mid-stream: the bridge reconnects, nothing lost, nothing doubled", async () => {
  await using broker = await plantBroker(true);
  await using node = await bridgedNode(broker, { TWINMILL_MQTT_PORT: "off" });
  const twins = ["r1", "r2", "r3"];
  await burst(broker.url, twins, 1, 400); // in the broker before it stops
  await waitFor(async () => (await metric(node, "twinmill_bridge_acks_total")) >= 100, {
    intervalMs: 5,
    timeoutMs: 30_000,
  });
  await broker.restart(async () => {
    await waitFor(async () => (await metric(node, "twinmill_bridge_connected")) === 0, {
      message: "the node sees the broker gone",
    });
  });
  await waitFor(async () => (await metric(node, "twinmill_bridge_connected")) === 1, {
    message: "the bridge reconnects",
    timeoutMs: 20_000,
  });
  await burst(broker.url, twins, 401, 500);
  await exactly(node, twins, 500);
  assert.ok((await metric(node, "twinmill_bridge_connects_total")) >= 2);
});

Deno.test("bridge: a bad URL or an unreadable file stops start-up with one line", async () => {
  const url = await runNode({ TWINMILL_MQTT_URL: "http://broker:1883" });
  assert.equal(url.code, 2);
  assert.equal(
    url.stderr.trim(),
    "twinmill: Invalid configuration: TWINMILL_MQTT_URL: must be mqtt://host[:port] or " +
      "mqtts://host[:port]",
  );
  const ca = await runNode({
    TWINMILL_MQTT_URL: "mqtts://127.0.0.1:8883",
    TWINMILL_MQTT_CA: "/nonexistent/ca.pem",
  });
  assert.equal(ca.code, 2);
  assert.equal(
    ca.stderr.trim(),
    'twinmill: Invalid configuration: TWINMILL_MQTT_CA: cannot read file "/nonexistent/ca.pem"',
  );
  const secret = await runNode({
    TWINMILL_MQTT_URL: "mqtt://127.0.0.1:1",
    TWINMILL_MQTT_PASSWORD: "s3cret-pw",
    TWINMILL_MQTT_PASSWORD_FILE: "/nonexistent/pw",
  });
  assert.equal(secret.code, 2);
  assert.ok(!secret.stderr.includes("s3cret-pw"), secret.stderr);
});

/** The retained desired state a fresh MQTT 5 subscriber on `port` gets within 1 s, or null. */
async function retainedDesired(port: number, id: string): Promise<string | null> {
  const out = await new Deno.Command(findBinary("mosquitto_sub", "mosquitto-clients"), {
    args: ["-V", "5", "-p", String(port), "-t", `twins/${id}/desired`, "-C", "1", "-W", "1"],
    stdout: "piped",
    stderr: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  return out.code === 0 && text !== "" ? text : null;
}

Deno.test("bridge: TWINMILL_DESIRED_EXPIRY gives the retained desired state on the plant's broker its Message Expiry Interval", async () => {
  await using broker = await plantBroker();
  await using node = await bridgedNode(broker, {
    TWINMILL_MQTT_PORT: "off",
    TWINMILL_DESIRED_EXPIRY: "3",
  });
  const put = await getJson(`${node.httpUrl}/v1/twins/exp-b`, json("PUT", { attributes: {} }));
  assert.ok(put.status < 300, JSON.stringify(put.body));
  // subscribed first (retain as published), so no timing decides what it sees
  const sub = await mqtt.connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 0 });
  try {
    const got = new Promise<mqtt.IPublishPacket>((resolve) =>
      sub.on("message", (_t, payload, packet) => {
        if (JSON.parse(String(payload)).rpm === 9) resolve(packet);
      })
    );
    await sub.subscribeAsync("twins/exp-b/desired", { qos: 1, rap: true });
    const patch = await getJson(
      `${node.httpUrl}/v1/twins/exp-b/desired`,
      json("PATCH", { rpm: 9 }),
    );
    assert.equal(patch.status, 200, JSON.stringify(patch.body));
    const packet = await got;
    assert.equal(packet.retain, true);
    const left = packet.properties?.messageExpiryInterval;
    assert.ok(left !== undefined && left >= 1 && left <= 3, `expiry interval ${left}`);
  } finally {
    await sub.endAsync();
  }
  // mosquitto drops the retained copy once the interval is over
  await waitFor(async () => (await retainedDesired(broker.port, "exp-b")) === null, {
    message: "no retained desired state after the expiry",
    timeoutMs: 15_000,
  });
});

Deno.test("bridge: diagnostics say a bridged device is reached through the bridge (link, connected or not, last message)", async () => {
  await using broker = await plantBroker();
  await using node = await bridgedNode(broker);
  const sent = Date.now();
  const r = await publishQos1({ mqttPort: broker.port }, "twins/dg-1/telemetry", '{"t":1}');
  assert.equal(r.code, 0, r.stderr);
  await waitFor(async () => (await twin(node.httpUrl, "dg-1"))?.version === 1);
  const diagnostics = async () => {
    const res = await getJson(`${node.httpUrl}/v1/twins/dg-1/diagnostics`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body;
  };
  const up = await diagnostics();
  assert.equal(up.connectivity.online, true, JSON.stringify(up));
  const s = up.connectivity.session;
  assert.equal(s.protocol, "mqtt 5");
  assert.match(s.clientId, /^twinmill-/, "the bridge's client id");
  assert.deepEqual({ ...s.bridge, lastMessageAt: undefined }, {
    url: broker.url,
    connected: true,
    lastMessageAt: undefined,
  });
  assert.ok(Date.parse(s.bridge.lastMessageAt) >= sent - 1000, s.bridge.lastMessageAt);
  // a twin whose device never spoke through the bridge has no session
  const put = await getJson(`${node.httpUrl}/v1/twins/dg-2`, json("PUT", { attributes: {} }));
  assert.ok(put.status < 300);
  const quiet = await getJson(`${node.httpUrl}/v1/twins/dg-2/diagnostics`);
  assert.equal(quiet.body.connectivity.session, null);

  // the plant's broker goes away: still reached through the bridge, which is disconnected
  await broker.restart(async () => {
    await waitFor(async () => (await metric(node, "twinmill_bridge_connected")) === 0);
    const down = await diagnostics();
    assert.equal(down.connectivity.online, false);
    assert.equal(down.connectivity.session.bridge.connected, false);
    assert.match(
      down.summary,
      /reached through the bridge to mqtt:\/\/127\.0\.0\.1:\d+, which is disconnected/,
    );
  });
});
