/**
 * The single node as a user runs it: a real `main.ts` process, devices over MQTT
 * (`mosquitto_pub` and npm:mqtt), apps over HTTP.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import mqtt from "mqtt";
import {
  metric,
  mosquittoPub,
  publishQos1,
  runNode,
  startNode,
  twinOrNull,
  waitFor,
  within,
} from "../harness/mod.ts";

type Twin = {
  version: number;
  reported: Record<string, unknown>;
  desired: Record<string, unknown>;
  connectivity: { status: string };
};

const twin = (base: string, id: string) => twinOrNull<Twin>(base, id);

/** Publish `n` QoS 1 telemetry messages to each twin; resolves when every PUBACK is in. */
async function publishAll(url: string, twins: string[], n: number) {
  const c = await mqtt.connectAsync(url, { clientId: `pub-${crypto.randomUUID()}` });
  try {
    const all: Promise<unknown>[] = [];
    for (let i = 1; i <= n; i++) {
      for (const t of twins) {
        all.push(
          c.publishAsync(`twins/${t}/telemetry`, JSON.stringify({ seq: i, temp: 20 + i / 10 }), {
            qos: 1,
          }),
        );
      }
    }
    await Promise.all(all);
  } finally {
    await c.endAsync();
  }
}

Deno.test("quick start: mosquitto_pub telemetry becomes a twin readable over HTTP", async () => {
  await using node = await startNode();
  const pub = await publishQos1(
    node,
    "twins/press-7/telemetry",
    '{"temp":21.5,"rpm":1200,"running":true,"mode":"auto"}',
  );
  assert.equal(pub.code, 0, pub.stderr);
  const t = await waitFor(() => twin(node.httpUrl, "press-7"), { message: "twin press-7 appears" });
  assert.deepEqual(t!.reported, { temp: 21.5, rpm: 1200, running: true, mode: "auto" });
  assert.equal(t!.version, 1);
});

Deno.test("after N accepted messages a fresh twin's version is exactly N, in publish order (QoS 0 and 1)", async () => {
  await using node = await startNode();
  const twins = ["a", "b.c", "d:e", "f_g", "h-i"];
  await publishAll(node.mqttUrl!, twins, 200);
  for (const id of twins) {
    const t = await waitFor(async () => {
      const t = await twin(node.httpUrl, id);
      return t?.version === 200 ? t : null;
    }, { message: `twin ${id} reaches version 200` });
    assert.equal(t!.reported.seq, 200); // last message applied last
  }
  const c = await mqtt.connectAsync(node.mqttUrl!);
  for (let i = 0; i < 50; i++) c.publish("twins/q0/telemetry", JSON.stringify({ i }), { qos: 0 });
  await c.endAsync();
  await waitFor(async () => (await twin(node.httpUrl, "q0"))?.version === 50, {
    message: "QoS 0 applied",
  });
  assert.equal(await metric(node, "twinmill_mqtt_messages_acked_total"), 1050);
});

Deno.test("kill -9 then restart: every acknowledged message and every 200 desired patch survives, versions exact", async () => {
  await using node = await startNode();
  const base = node.httpUrl;
  const patch = await fetch(`${base}/v1/twins/k1/desired`, {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: '{"speed":1}',
  });
  assert.equal(patch.status, 404); // not provisioned yet
  await patch.body?.cancel();
  const put = await fetch(`${base}/v1/twins/k1`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: '{"attributes":{"site":"A"}}',
  });
  assert.equal(put.status, 201);
  await put.body?.cancel();
  const ok = await fetch(`${base}/v1/twins/k1/desired`, {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: '{"speed":7}',
  });
  assert.equal(ok.status, 200);
  await ok.body?.cancel();
  const twins = ["k1", "k2", "k3", "k4"];
  await publishAll(node.mqttUrl!, twins, 300);
  // killed right after the last PUBACK: some messages are durable but not yet applied/snapshotted
  assert.equal(await node.kill("SIGKILL"), 137);
  await using again = await node.restart();
  for (const id of twins) {
    const t = await waitFor(async () => {
      const t = await twin(again.httpUrl, id);
      return t && t.version >= 300 ? t : null;
    }, { message: `twin ${id} recovered` });
    assert.equal(t!.version, id === "k1" ? 302 : 300, `exact version of ${id}`);
    assert.equal(t!.reported.seq, 300);
  }
  assert.deepEqual((await twin(again.httpUrl, "k1"))!.desired, { speed: 7 });
  // the desired state is retained again for devices after the restart
  const sub = new Deno.Command("mosquitto_sub", {
    args: ["-p", String(again.mqttPort), "-t", "twins/k1/desired", "-C", "1", "-W", "10"],
    stdout: "piped",
  }).output();
  const out = await sub;
  assert.equal(new TextDecoder().decode(out.stdout).trim(), '{"speed":7}');
  await waitFor(async () => (await metric(again, "twinmill_inbound_log_pending")) === 0, {
    message: "inbound log drains after replay",
  });
});

Deno.test("malformed, non-object, oversized payloads, bad ids and unknown topics are rejected, counted, logged once per device per minute", async () => {
  await using node = await startNode();
  const port = String(node.mqttPort);
  const pub = (topic: string, msg: string) => publishQos1(node, topic, msg);
  const watcher = await mqtt.connectAsync(node.mqttUrl!, { reconnectPeriod: 0 });
  const seen: string[] = [];
  // (the Sparkplug host's retained STATE aside)
  watcher.on("message", (topic, payload) => {
    if (!topic.startsWith("spBv1.0/STATE/")) seen.push(`${topic} ${payload}`);
  });
  assert.deepEqual((await watcher.subscribeAsync("#", { qos: 1 })).map((g) => g.qos), [1]);
  // where rejects are diverted, nobody may subscribe (SUBACK 0x80)
  await assert.rejects(watcher.subscribeAsync("$SYS/twinmill/#", { qos: 1 }), /Subscribe error/);
  assert.equal((await pub("twins/m1/telemetry", '{"temp":1}')).code, 0);
  await waitFor(async () => (await twin(node.httpUrl, "m1"))?.version === 1);
  for (const m of ["not json", "[1,2]", '"str"', '{"nested":{"a":1}}', "{}", '{"temp":1']) {
    assert.equal((await pub("twins/m1/telemetry", m)).code, 0);
  }
  const big = `{"x":"${"a".repeat(64 * 1024)}"}`;
  const bigFile = await Deno.makeTempFile();
  await Deno.writeTextFile(bigFile, big);
  assert.equal(
    (await mosquittoPub(["-p", port, "-q", "1", "-t", "twins/m1/telemetry", "-f", bigFile])).code,
    0,
  );
  await Deno.remove(bigFile);
  await pub("twins/bad id!/telemetry", '{"temp":1}');
  await pub(`twins/${"x".repeat(129)}/telemetry`, '{"temp":1}');
  await pub("twins/m1/desired", '{"speed":99}'); // devices may not write desired
  await pub("factory/other", '{"temp":1}');
  await pub("twins/m1/status", "sleeping");
  const rejected = await waitFor(async () => {
    const n = await metric(node, "twinmill_mqtt_messages_rejected_total");
    return n >= 12 ? n : 0;
  }, { message: "12 rejections counted" });
  assert.equal(rejected, 12);
  const text = await (await fetch(`${node.httpUrl}/metrics`)).text();
  for (
    const reason of [
      "not_json",
      "not_object",
      "bad_field",
      "too_large",
      "bad_id",
      "bad_topic",
      "bad_status",
    ]
  ) {
    assert.match(
      text,
      new RegExp(`twinmill_mqtt_messages_rejected_total\\{reason="${reason}"\\} [1-9]`),
      reason,
    );
  }
  const t = await twin(node.httpUrl, "m1");
  assert.equal(t!.version, 1); // unchanged
  assert.deepEqual(t!.reported, { temp: 1 });
  assert.deepEqual(t!.desired, {});
  const m1Logs = node.logs.filter((l) =>
    l.includes('"device message rejected"') && l.includes('"device":"m1"')
  );
  assert.equal(m1Logs.length, 1, "logged once per device per minute");
  assert.equal(await twin(node.httpUrl, "bad"), null);
  // subscribers saw the one valid message and nothing rejected
  await pub("twins/m1/telemetry", '{"temp":2}');
  await waitFor(() => seen.length >= 2, { message: "watcher gets valid messages" });
  assert.deepEqual(seen, ['twins/m1/telemetry {"temp":1}', 'twins/m1/telemetry {"temp":2}']);
  await watcher.endAsync();
});

Deno.test("a large message sent right after connecting is acknowledged (the read does not stall)", async () => {
  await using node = await startNode();
  // 40 KiB: over one socket read, under the size limit (a twin message is at most 64 KiB)
  const body = JSON.stringify({ blob: "x".repeat(40 * 1024) });
  for (let i = 1; i <= 100; i++) {
    const c = await mqtt.connectAsync(node.mqttUrl!, { reconnectPeriod: 0 });
    try {
      await within(
        c.publishAsync("twins/big1/telemetry", body, { qos: 1 }),
        10_000,
        `no PUBACK for message ${i} in 10 s`,
      );
    } finally {
      await c.endAsync(true);
    }
  }
  assert.equal((await twin(node.httpUrl, "big1"))?.version, 100);
});

Deno.test("status and will message drive connectivity; reported is a merge patch", async () => {
  await using node = await startNode();
  const c = await mqtt.connectAsync(node.mqttUrl!, {
    will: { topic: "twins/w1/status", payload: Buffer.from("offline"), qos: 1, retain: false },
    reconnectPeriod: 0,
  });
  await c.publishAsync("twins/w1/status", "online", { qos: 1 });
  await c.publishAsync("twins/w1/reported", '{"fw":{"version":"1.2","channel":"beta"}}', {
    qos: 1,
  });
  await c.publishAsync("twins/w1/reported", '{"fw":{"channel":null}}', { qos: 1 });
  const t = await waitFor(async () => {
    const t = await twin(node.httpUrl, "w1");
    return t?.version === 3 ? t : null;
  });
  assert.equal(t!.connectivity.status, "online");
  assert.deepEqual(t!.reported, { fw: { version: "1.2" } });
  c.stream.destroy(); // vanish without DISCONNECT: the broker publishes the will
  await waitFor(async () => (await twin(node.httpUrl, "w1"))?.connectivity.status === "offline", {
    message: "will message sets offline",
  });
  await c.endAsync(true);
});

Deno.test("idle twins are passivated and come back with their state", async () => {
  await using node = await startNode({ TWINMILL_IDLE_SECONDS: "1" });
  await publishAll(node.mqttUrl!, ["p1", "p2"], 3);
  await waitFor(
    async () => (await metric(node, "twinmill_twin_passivations_total")) === 2,
    {
      message: "both twins passivated",
    },
  );
  assert.equal(await metric(node, "twinmill_twins_active"), 0);
  assert.equal((await twin(node.httpUrl, "p1"))!.version, 3); // read from the snapshot
  await publishAll(node.mqttUrl!, ["p1"], 1);
  await waitFor(async () => (await twin(node.httpUrl, "p1"))?.version === 4, {
    message: "reactivated",
  });
});

Deno.test("invalid configuration stops start-up with one clear line and exit code 2", async () => {
  for (
    const [env, variable] of [
      [{ TWINMILL_HTTP_PORT: "eighty" }, "TWINMILL_HTTP_PORT"],
      [{ TWINMILL_MQTT_PORT: "70000" }, "TWINMILL_MQTT_PORT"],
      [{ TWINMILL_HTTP_HOST: "0.0.0.0" }, "TWINMILL_HTTP_HOST"],
      [{ TWINMILL_MQTT_HOST: "0.0.0.0", TWINMILL_MQTT_AUTH: "off" }, "TWINMILL_MQTT_AUTH"],
      [{ INFLUX_URL: "not a url" }, "INFLUX_URL"],
      [{ INFLUX_API: "v3" }, "INFLUX_API"],
      [{ TWINMILL_LOG: "loud" }, "TWINMILL_LOG"],
    ] as const
  ) {
    const r = await runNode(env as Record<string, string>);
    assert.equal(r.code, 2, `${variable}: ${r.stderr}`);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], new RegExp(`^twinmill: Invalid configuration: ${variable}: `));
    assert.doesNotMatch(r.stderr, /\n\s+at /); // no stack trace
  }
});
