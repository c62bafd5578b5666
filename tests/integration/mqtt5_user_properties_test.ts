/**
 * MQTT 5 user properties end to end, with real clients and a real influxd: `mosquitto_pub -V 5
 * -D publish user-property …` and `npm:mqtt` with `userProperties` → the twin's event on
 * `/v1/stream` carries them; a profile listing `tags` makes them InfluxDB tags of the point;
 * over the limits → PUBACK 0x99 with a reason string, counted; a `kill -9` mid-burst → every
 * point, replayed or not, still has its tag (the properties are in the durable log); in a
 * cluster they cross JetStream to the twin's owner and the event reaches a stream on another node.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import {
  getJson,
  influxCount,
  metric,
  metricBy,
  mosquittoPub,
  type NodeProcess,
  startInfluxd,
  startNats,
  startNode,
  waitFor,
  waitForInfluxCount,
} from "../harness/mod.ts";
import { sharedBy } from "../harness/cluster_wait.ts";

/** A twin event as the stream sends it. */
interface StreamEvent {
  type: string;
  twin: string;
  version: number;
  data: Record<string, unknown>;
  properties?: Record<string, string | string[]>;
}

/** Opens `/v1/stream?<query>`; resolves once the node counts the client. */
async function openStream(node: NodeProcess, query: string) {
  const ws = new WebSocket(`ws://127.0.0.1:${node.httpPort}/v1/stream?${query}`);
  const events: StreamEvent[] = [];
  ws.onmessage = (e) => events.push(JSON.parse(e.data));
  const closed = new Promise<void>((resolve) => ws.onclose = () => resolve());
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    closed.then(() => reject(new Error("stream closed before it opened")));
  });
  await waitFor(async () => (await metric(node, "twinmill_ws_clients")) >= 1, {
    message: "node counts the stream client",
  });
  return {
    events,
    async [Symbol.asyncDispose]() {
      if (ws.readyState !== WebSocket.CLOSED) ws.close();
      await closed;
    },
  };
}

async function put(url: string, body: unknown): Promise<void> {
  const r = await fetch(url, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  assert.ok(r.ok, `PUT ${url}: ${r.status} ${await r.text()}`);
}

/** A profile making user properties `line` and `shift` tags, and twin `id` using it. */
async function tagged(node: NodeProcess, id: string): Promise<void> {
  await put(`${node.httpUrl}/v1/profiles/by-line`, { rules: [], tags: ["line", "shift"] });
  await put(`${node.httpUrl}/v1/twins/${id}`, { attributes: { profile: "by-line" } });
}

const version = async (node: NodeProcess, id: string): Promise<number> =>
  (await getJson(`${node.httpUrl}/v1/twins/${id}`)).body.version ?? 0;

Deno.test("mqtt5 user properties: on the stream event, InfluxDB tags by profile, 0x99 over the limits", async () => {
  await using influx = await startInfluxd();
  const db = "props";
  await using node = await startNode({ INFLUX_URL: influx.url, INFLUX_API: "v1", INFLUX_DB: db });
  const id = "press-props";
  await tagged(node, id);
  await using stream = await openStream(node, `twins=${id}&types=telemetry,state`);

  const pub = await mosquittoPub([
    ...["-V", "5", "-h", "127.0.0.1", "-p", String(node.mqttPort), "-q", "1"],
    ...["-D", "publish", "user-property", "line", "L3"],
    ...["-D", "publish", "user-property", "shift", "night"],
    ...["-t", `twins/${id}/telemetry`, "-m", '{"temp":1}'],
  ]);
  assert.equal(pub.code, 0, pub.stderr);

  const dev = await mqtt.connectAsync(node.mqttUrl!, {
    protocolVersion: 5,
    clientId: "gw-props",
    reconnectPeriod: 0,
  });
  try {
    await dev.publishAsync(`twins/${id}/telemetry`, '{"temp":2}', {
      qos: 1,
      properties: { userProperties: { line: "L4", lot: ["a", "b"] } },
    });
    await dev.publishAsync(`twins/${id}/reported`, '{"fw":"1.2"}', {
      qos: 1,
      properties: { userProperties: { source: "gateway 2" } },
    });
    await dev.publishAsync(`twins/${id}/telemetry`, '{"temp":3}', { qos: 1 });

    // over the limits: refused with 0x99 and why; the twin is unchanged
    const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`p${i}`, "x"]));
    for (const userProperties of [many, { line: "x".repeat(257) }]) {
      const ack = await new Promise<{ code?: number; reason?: string }>((resolve) =>
        dev.publish(`twins/${id}/telemetry`, '{"temp":9}', {
          qos: 1,
          properties: { userProperties },
        }, (err, packet) => {
          const p = packet as { reasonCode?: number; properties?: { reasonString?: string } };
          resolve({
            code: (err as { code?: number } | undefined)?.code ?? p?.reasonCode,
            reason: p?.properties?.reasonString,
          });
        })
      );
      assert.equal(ack.code, 0x99);
      assert.match(ack.reason ?? "", /user properties over the limits: at most 16/);
    }
  } finally {
    await dev.endAsync();
  }
  assert.equal(await version(node, id), 5); // attributes + 4 accepted messages
  const rejected = await metricBy(node, "twinmill_mqtt_messages_rejected_total", "reason");
  assert.equal(rejected.bad_property, 2);

  await waitFor(() => stream.events.length >= 4, { message: "4 events on the stream" });
  assert.deepEqual(
    stream.events.map((e) => [e.type, e.data, e.properties]),
    [
      ["telemetry", { temp: 1 }, { line: "L3", shift: "night" }],
      ["telemetry", { temp: 2 }, { line: "L4", lot: ["a", "b"] }],
      ["state", { reported: { fw: "1.2" } }, { source: "gateway 2" }],
      ["telemetry", { temp: 3 }, undefined],
    ],
  );

  // the profile's tags: line and shift (not lot) on the points that had them
  await waitForInfluxCount(influx, db, id, 3);
  const r = await influx.query(
    `SELECT "temp", "line", "shift", "lot" FROM "telemetry" WHERE "device" = '${id}'`,
    db,
  );
  const s = r.results[0].series[0];
  const rows = s.values.map((v: unknown[]) =>
    Object.fromEntries(s.columns.map((c: string, i: number) => [c, v[i]]))
  );
  assert.deepEqual(
    rows.map((x: Record<string, unknown>) => [x.temp, x.line, x.shift, x.lot]),
    [[1, "L3", "night", null], [2, "L4", null, null], [3, null, null, null]],
  );
});

Deno.test("mqtt5 user properties: kill -9 mid-burst, every point (replayed or not) keeps its tag", async () => {
  await using influx = await startInfluxd();
  const db = "propskill";
  const env = { INFLUX_URL: influx.url, INFLUX_API: "v1", INFLUX_DB: db };
  await using first = await startNode(env);
  const id = "press-propskill";
  await tagged(first, id);
  const N = 3000;
  const client = await mqtt.connectAsync(first.mqttUrl!, {
    protocolVersion: 5,
    clientId: "dev-propskill",
    reconnectPeriod: 0,
  });
  client.on("error", () => {}); // the connection dies with the node
  let acked = 0;
  for (let i = 0; i < N; i++) {
    client.publishAsync(`twins/${id}/telemetry`, JSON.stringify({ temp: i }), {
      qos: 1,
      properties: { userProperties: { line: "L7", shift: i % 2 ? "day" : "night" } },
    }).then(() => void acked++, () => {});
  }
  await waitFor(() => acked >= N / 4, { timeoutMs: 30_000, message: "a quarter acknowledged" });
  assert.equal(await first.kill("SIGKILL"), 137);
  await waitFor(() => !client.connected, { message: "the device sees its connection end" });
  client.end(true);
  assert.ok(acked < N, `the kill came mid-burst (${acked} of ${N} acknowledged)`);

  await using second = await first.restart();
  await waitFor(async () => (await metric(second, "twinmill_inbound_log_pending")) === 0, {
    timeoutMs: 30_000,
    message: "the replay drains the inbound log",
  });
  // some messages were in the log but not retired at the kill: the replay applied them
  const replayed = second.logs.find((l) => l.includes("replayed unretired inbound messages"));
  assert.ok(replayed, "the restart replayed entries of the durable log");
  const v = (await version(second, id)) - 1; // less the attributes
  assert.ok(v >= acked, `version holds all ${acked} acknowledged messages (${v})`);
  // exactly one point per message, each in its tagged series: none rewritten without its tags
  await waitForInfluxCount(influx, db, id, v, 30_000);
  const tagged3 = await influx.query(
    `SELECT count("temp") FROM "telemetry" WHERE "device" = '${id}' AND "line" = 'L7' ` +
      `GROUP BY "shift"`,
    db,
  );
  const counts = Object.fromEntries(
    tagged3.results[0].series.map((s: { tags: { shift: string }; values: number[][] }) => [
      s.tags.shift,
      s.values[0][1],
    ]),
  );
  assert.equal(counts.day + counts.night, v, JSON.stringify(counts));
  assert.ok(Math.abs(counts.day - counts.night) <= 1, JSON.stringify(counts));
  await second.kill("SIGTERM");
  assert.equal(await influxCount(influx, db, id), v);
});

Deno.test("mqtt5 user properties in a cluster: through JetStream to the owner, on a stream of the other node", async () => {
  await using nats = await startNats({ jetstream: true });
  const env = { NATS_URL: nats.url, TWINMILL_SHARDS: "8" };
  await using n1 = await startNode({ ...env, TWINMILL_NODE_ID: "p1" });
  await using n2 = await startNode({ ...env, TWINMILL_NODE_ID: "p2" });
  await sharedBy(n1, 2);
  const twins = ["cp-1", "cp-2", "cp-3", "cp-4"]; // owned by either node
  await using stream = await openStream(n2, `twins=${twins.join(",")}&types=telemetry`);
  const dev = await mqtt.connectAsync(n1.mqttUrl!, { protocolVersion: 5, reconnectPeriod: 0 });
  try {
    for (const [i, id] of twins.entries()) {
      await dev.publishAsync(`twins/${id}/telemetry`, `{"temp":${i}}`, {
        qos: 1,
        properties: { userProperties: { line: `L${i}`, "ünï": "cödé" } },
      });
    }
  } finally {
    await dev.endAsync();
  }
  await waitFor(() => stream.events.length >= 4, { message: "4 events on n2's stream" });
  const seen = Object.fromEntries(stream.events.map((e) => [e.twin, e.properties]));
  assert.deepEqual(
    seen,
    Object.fromEntries(twins.map((id, i) => [id, { line: `L${i}`, "ünï": "cödé" }])),
  );
});
