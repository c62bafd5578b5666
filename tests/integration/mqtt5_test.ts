/**
 * MQTT 5 on the embedded broker, with real clients (`npm:mqtt` with `protocolVersion: 5`,
 * `mosquitto_pub -V 5`): CONNACK limits; PUBACK reason codes and strings for a bad payload
 * (0x99), one over 64 KiB (0x97), a wrong topic or twin id (0x90), another twin's topic (0x87,
 * with device auth), a device over its rate (0x97, connection kept); a packet over the Maximum
 * Packet Size (DISCONNECT 0x95); topic aliases;
 * replies on a Response Topic; commands with Response Topic, Correlation Data and Message
 * Expiry, counted as delivered only once the device acknowledged them; MQTT 3.1.1 unchanged.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import mqtt, { type IClientOptions, type IClientPublishOptions, type MqttClient } from "mqtt";
import {
  findBinary,
  getJson,
  json,
  metric,
  type NodeProcess,
  startNode,
  waitFor,
} from "../harness/mod.ts";

/** Connect with MQTT 5; the client and its CONNACK. */
async function connect5(
  node: NodeProcess,
  o: IClientOptions = {},
): Promise<{ client: MqttClient; connack: mqtt.IConnackPacket }> {
  const client = mqtt.connect(node.mqttUrl!, { protocolVersion: 5, reconnectPeriod: 0, ...o });
  const connack = await new Promise<mqtt.IConnackPacket>((resolve, reject) => {
    client.once("connect", resolve);
    client.once("error", reject);
  });
  return { client, connack };
}

/** Publish and tell the PUBACK's reason code and reason string. */
function publish(
  c: MqttClient,
  topic: string,
  payload: string | Buffer,
  o: IClientPublishOptions = { qos: 1 },
): Promise<{ code: number; reason?: string }> {
  return new Promise((resolve) =>
    c.publish(topic, payload, o, (err, packet) => {
      const p = packet as { reasonCode?: number; properties?: { reasonString?: string } };
      const code = (err as { code?: number } | undefined)?.code ?? p?.reasonCode ?? 0;
      resolve({ code, reason: p?.properties?.reasonString });
    })
  );
}

const version = async (node: NodeProcess, id: string): Promise<number> =>
  (await getJson(`${node.httpUrl}/v1/twins/${id}`)).body.version ?? 0;

Deno.test("mqtt5: CONNACK limits, reason codes and strings, topic aliases, response topic", async () => {
  await using node = await startNode();
  const { client: dev, connack } = await connect5(node, { clientId: "press-5" });
  try {
    assert.equal(connack.reasonCode, 0);
    assert.equal(connack.properties?.topicAliasMaximum, 64);
    assert.equal(connack.properties?.maximumPacketSize, 256 * 1024);
    assert.equal(connack.properties?.receiveMaximum, 1000);

    assert.deepEqual(await publish(dev, "twins/press-5/telemetry", '{"temp":20}'), {
      code: 0,
      reason: undefined,
    });

    const notJson = await publish(dev, "twins/press-5/telemetry", "not json");
    assert.equal(notJson.code, 0x99);
    assert.match(notJson.reason ?? "", /JSON/);
    const notObject = await publish(dev, "twins/press-5/telemetry", "[1,2]");
    assert.equal(notObject.code, 0x99);
    assert.equal(notObject.reason, "payload must be a JSON object");
    const big = await publish(
      dev,
      "twins/press-5/telemetry",
      JSON.stringify({ s: "x".repeat(100_000) }),
    );
    assert.equal(big.code, 0x97, "0x95 is no PUBACK code: quota exceeded, with the reason");
    assert.match(big.reason ?? "", /64 KiB/);
    const badId = await publish(dev, "twins/bad id!/telemetry", '{"t":1}');
    assert.equal(badId.code, 0x90);
    assert.match(badId.reason ?? "", /twin id .* not valid: an id is 1-128 characters/);
    const badTopic = await publish(dev, "twins/press-5/telemetri", '{"t":1}');
    assert.equal(badTopic.code, 0x90);
    assert.match(badTopic.reason ?? "", /not a twin topic/);

    // topic alias: the topic once, then only its alias
    assert.equal(
      (await publish(dev, "twins/press-5/telemetry", '{"temp":21}', {
        qos: 1,
        properties: { topicAlias: 3 },
      })).code,
      0,
    );
    assert.equal(
      (await publish(dev, "", '{"temp":22}', { qos: 1, properties: { topicAlias: 3 } })).code,
      0,
    );
    await waitFor(async () => (await version(node, "press-5")) === 3);
    assert.equal((await getJson(`${node.httpUrl}/v1/twins/press-5`)).body.reported.temp, 22);

    // request/response: the reply comes on the Response Topic with the same Correlation Data
    const replies: Array<{ topic: string; body: unknown; correlation?: string }> = [];
    dev.on("message", (topic, payload, packet) =>
      replies.push({
        topic,
        body: JSON.parse(payload.toString()),
        correlation: packet.properties?.correlationData?.toString(),
      }));
    const rr = { qos: 1, properties: { responseTopic: "press-5/replies" } } as const;
    await publish(dev, "twins/press-5/telemetry", '{"temp":23}', {
      ...rr,
      properties: { ...rr.properties, correlationData: Buffer.from("req-1") },
    });
    await publish(dev, "twins/press-5/telemetry", "nope", {
      ...rr,
      properties: { ...rr.properties, correlationData: Buffer.from("req-2") },
    });
    await waitFor(() => replies.length === 2);
    assert.deepEqual(replies[0], {
      topic: "press-5/replies",
      body: { accepted: true },
      correlation: "req-1",
    });
    assert.equal(replies[1].correlation, "req-2");
    assert.deepEqual(replies[1].body, { accepted: false, reason: "payload is not UTF-8 JSON" });

    // a Sparkplug B message refused by the host application: told why too
    const sp = await publish(dev, "spBv1.0/g1/NDATA/e1", Buffer.from([0xff, 0x01, 0x02]));
    assert.ok(sp.code >= 0x80, `refused: ${JSON.stringify(sp)}`);
    assert.match(sp.reason ?? "", /^Sparkplug B: /);

    // nothing refused reached the twin; each was counted
    assert.equal(await version(node, "press-5"), 4);
    assert.ok((await metric(node, "twinmill_mqtt_messages_rejected_total")) >= 6);
    const diag = await getJson(`${node.httpUrl}/v1/twins/press-5/diagnostics`);
    assert.match(JSON.stringify(diag.body), /not_json|not_object/, "kept for diagnostics");
    assert.match(JSON.stringify(diag.body), /mqtt 5/, "the session's protocol");
  } finally {
    await dev.endAsync();
  }

  // MQTT 3.1.1 unchanged: a bad payload is acknowledged (and dropped)
  const old = await mqtt.connectAsync(node.mqttUrl!, { clientId: "old-1", reconnectPeriod: 0 });
  await old.publishAsync("twins/old-1/telemetry", "not json", { qos: 1 });
  await old.endAsync();

  // mosquitto_pub -V 5 shows the reason code
  const out = await new Deno.Command(findBinary("mosquitto_pub", "mosquitto-clients"), {
    args: [
      "-V",
      "5",
      "-h",
      "127.0.0.1",
      "-p",
      String(node.mqttPort),
      "-q",
      "1",
      "-t",
      "twins/press-6/telemetry",
      "-m",
      "not json",
      "-d",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.match(text, /PUBACK \(Mid: \d+, RC:153\)|Payload format invalid/, text);

  // a packet announced over the Maximum Packet Size: DISCONNECT 0x95 as its header arrives
  // (clients check the CONNACK's limit themselves, so this one is written by hand)
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: node.mqttPort! });
  try {
    const connect = [0x10, 14, 0, 4, 77, 81, 84, 84, 5, 2, 0, 60, 0, 0, 1, 120]; // v5, id "x"
    await conn.write(new Uint8Array(connect));
    const connack = new Uint8Array(64);
    assert.ok((await conn.read(connack))! >= 4 && connack[0] === 0x20 && connack[3] === 0);
    // PUBLISH QoS 0, remaining length 300,000, topic "t", the first bytes of its payload
    await conn.write(
      new Uint8Array([0x30, 0xe0, 0xa7, 0x12, 0, 1, 116, ...new Array(100).fill(0)]),
    );
    const got: number[] = [];
    const buf = new Uint8Array(64);
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
      got.push(...buf.subarray(0, n));
    }
    assert.deepEqual(got.slice(0, 1), [0xe0], `DISCONNECT, got ${got}`);
    assert.equal(got[2], 0x95, "packet too large");
  } finally {
    try {
      conn.close();
    } catch { /* closed by the node */ }
  }
});

Deno.test("mqtt5: not authorized (0x87) with device auth; over the rate, quota exceeded (0x97)", async () => {
  await using node = await startNode({ TWINMILL_MQTT_AUTH: "on", TWINMILL_DEVICE_RATE: "5" });
  for (const id of ["press-1", "press-2"]) {
    const r = await getJson(`${node.httpUrl}/v1/twins/${id}`, json("PUT", { attributes: {} }));
    assert.equal(r.status, 201);
  }
  const { token } = (await getJson(`${node.httpUrl}/v1/twins/press-1/credentials`, json("POST")))
    .body.credentials;
  await assert.rejects(
    connect5(node, { username: "press-1", password: "wrong" }),
    (err: { code?: number }) => err.code === 0x86,
  );
  const { client: dev } = await connect5(node, {
    clientId: "press-1-dev",
    username: "press-1",
    password: token,
  });
  try {
    const denied = await publish(dev, "twins/press-2/telemetry", '{"t":1}');
    assert.equal(denied.code, 0x87);
    assert.match(denied.reason ?? "", /may not publish to "twins\/press-2\/telemetry"/);
    const suback = await dev.subscribeAsync(["twins/press-1/commands/+", "#"], { qos: 1 }).then(
      (granted) => granted.map((g) => g.qos),
      (err) => (err.packet as { granted: number[] }).granted,
    );
    assert.deepEqual(suback, [1, 0x87]);

    // a burst of 10 (2 s worth; 2 used above), then quota exceeded; the connection stays
    const codes = await Promise.all(
      Array.from({ length: 30 }, (_, i) => publish(dev, "twins/press-1/telemetry", `{"i":${i}}`)),
    );
    const ok = codes.filter((c) => c.code === 0).length;
    const over = codes.filter((c) => c.code === 0x97).length;
    assert.equal(ok + over, 30, JSON.stringify(codes));
    assert.ok(ok >= 5 && over >= 10, `${ok} accepted, ${over} over the rate`);
    assert.ok(dev.connected, "the connection is kept");
    await waitFor(async () => (await version(node, "press-1")) === 1 + ok);
    assert.equal((await getJson(`${node.httpUrl}/v1/twins/press-2`)).body.version, 1);
    assert.ok((await metric(node, "twinmill_rate_limited_total")) >= 10);
  } finally {
    await dev.endAsync();
  }
});

Deno.test("mqtt5: commands carry Response Topic, Correlation Data and expiry; delivered on PUBACK", async () => {
  await using node = await startNode();
  const put = await getJson(`${node.httpUrl}/v1/twins/press-7`, json("PUT", { attributes: {} }));
  assert.equal(put.status, 201);
  const command = async (id: string) =>
    (await getJson(`${node.httpUrl}/v1/twins/press-7/commands/${id}`)).body;

  // a device that never acknowledges: the command is handed over but stays pending
  const got: string[] = [];
  const { client: mute } = await connect5(node, {
    clientId: "press-7-mute",
    customHandleAcks: (topic) => got.push(topic), // no PUBACK, ever
  });
  await mute.subscribeAsync("twins/press-7/commands/+", { qos: 1 });
  const c1 = (await getJson(
    `${node.httpUrl}/v1/twins/press-7/commands`,
    json("POST", { name: "calibrate", timeoutMs: 60_000 }),
  )).body;
  await waitFor(() => got.length >= 1);
  await new Promise((r) => setTimeout(r, 1_200)); // past the broker's PUBACK wait
  assert.equal((await command(c1.id)).status, "pending", "not acknowledged: not delivered");
  await mute.endAsync(true);

  // a device that acknowledges and answers on the Response Topic with the Correlation Data
  const { client: dev } = await connect5(node, { clientId: "press-7-dev" });
  const seen: Array<{ topic: string; props: Record<string, unknown> }> = [];
  dev.on("message", (topic, _payload, packet) => {
    const p = packet.properties ?? {};
    seen.push({ topic, props: p });
    if (p.responseTopic) {
      dev.publish(p.responseTopic, JSON.stringify({ status: "ok", result: { done: true } }), {
        qos: 1,
        properties: { correlationData: p.correlationData },
      });
    }
  });
  try {
    await dev.subscribeAsync("twins/press-7/commands/+", { qos: 1 });
    await waitFor(async () => (await command(c1.id)).status === "succeeded");
    const c = await command(c1.id);
    assert.ok(c.deliveries >= 1 && c.deliveredAt, JSON.stringify(c));
    const d = seen.find((s) => s.topic.endsWith(c1.id))!;
    assert.equal(d.props.responseTopic, `twins/press-7/commands/${c1.id}/result`);
    assert.equal(String(d.props.correlationData), c1.id);
    const expiry = d.props.messageExpiryInterval as number;
    assert.ok(expiry > 0 && expiry <= 60, `message expiry ${expiry} s within the command's 60 s`);
  } finally {
    await dev.endAsync();
  }
});
