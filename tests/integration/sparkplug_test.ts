/**
 * Sparkplug B end to end: Eclipse Tahu's `sparkplug-client` is a real edge node with a
 * device, on the embedded broker (and through the bridge, from mosquitto): births make twins
 * with their metadata, data by alias updates `reported` with exact version counts, a seq gap
 * is answered with a rebirth request, a device death and a lost connection (the NDEATH will)
 * take twins offline, a restarted edge node (new bdSeq) is back, a late death of its earlier
 * session is ignored, the host's STATE is retained, desired state becomes a DCMD. Bad input
 * (malformed protobuf, thousands of metrics, unknown aliases) is refused and counted. A bridged
 * node's scrape, with the bridge's and the Sparkplug host's samples, passes promtool.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { Buffer } from "node:buffer";
import { newClient } from "sparkplug-client";
import {
  getJson,
  json,
  metricBy,
  type NodeProcess,
  startInfluxd,
  startMosquitto,
  startNode,
  waitFor,
} from "../harness/mod.ts";
import { assertPromtoolClean } from "../harness/promtool.ts";
import { encode, type TestMetric } from "../../src/connectors/sparkplug/testing.ts";

/** What the tests reach inside Tahu's client (private in its types). */
interface TahuInternals {
  bdSeq: number;
  seq: number;
  client: {
    stream: { destroy(): void };
    end(force: boolean, opts: object, done: () => void): void;
    once(event: "end", f: () => void): void;
    publish(topic: string, payload: Uint8Array): void;
  };
}

/** Stop an edge node (Tahu's `stop()`: NDEATH, then DISCONNECT) and wait until it is closed. */
async function stopEdge(e: { c: { stop(): void }; tahu: TahuInternals }) {
  const ended = new Promise<void>((resolve) => e.tahu.client.once("end", resolve));
  e.c.stop();
  await ended;
}

/** Close an edge node whose connection was cut (no NDEATH of its own). */
const closeEdge = (e: { tahu: TahuInternals }) =>
  new Promise<void>((resolve) => e.tahu.client.end(true, {}, resolve));

// deno-lint-ignore no-explicit-any
type Payload = { metrics?: Array<{ name?: string; value?: any }> };

/** A Tahu edge node `plant/gw1` with device `press`, births sent on connect. */
async function edgeNode(
  url: string,
  o: { bdSeq?: number; username?: string; password?: string } = {},
) {
  const c = newClient({
    serverUrl: url,
    username: o.username ?? "",
    password: o.password ?? "",
    groupId: "plant",
    edgeNode: "gw1",
    clientId: "gw1",
    version: "spBv1.0",
    publishDeath: true,
    keepalive: 30,
    mqttOptions: { reconnectPeriod: 0 },
  });
  const tahu = c as unknown as TahuInternals;
  // its NBIRTH and its stop()'s NDEATH carry it (its will, built at construction, keeps 0)
  if (o.bdSeq !== undefined) tahu.bdSeq = o.bdSeq;
  const ncmd: Payload[] = [];
  const dcmd: Array<[string, Payload]> = [];
  c.on("ncmd", (p) => ncmd.push(p as Payload));
  c.on("dcmd", (device, p) => dcmd.push([device, p as Payload]));
  await new Promise<void>((resolve, reject) => {
    c.on("error", reject);
    c.on("birth", () => {
      c.publishNodeBirth({
        timestamp: Date.now(),
        metrics: [
          { name: "Node Control/Rebirth", type: "Boolean", value: false },
          { name: "Inputs/Temp", alias: 1, type: "Float", value: 20.5 },
        ],
      });
      c.publishDeviceBirth("press", {
        timestamp: Date.now(),
        metrics: [
          {
            name: "Speed",
            alias: 10,
            type: "Int32",
            value: 100,
            properties: { engUnit: { type: "String", value: "rpm" } },
          },
          { name: "Setpoint", alias: 11, type: "Int32", value: 50 },
        ],
      });
      resolve();
    });
  });
  return { c, tahu, ncmd, dcmd };
}

// deno-lint-ignore no-explicit-any
async function twin(node: NodeProcess, id: string): Promise<any> {
  const { status, body } = await getJson(`${node.httpUrl}/v1/twins/${id}`);
  return status === 200 ? body : null;
}

// deno-lint-ignore no-explicit-any
const until = (node: NodeProcess, id: string, ok: (t: any) => boolean, message: string) =>
  waitFor(async () => {
    const t = await twin(node, id);
    return t && ok(t) ? t : null;
  }, { message });

Deno.test("sparkplug: a Tahu edge node and its device on the embedded broker, from birth to death", async () => {
  await using node = await startNode();
  // the host's STATE, retained
  const watcher = await mqtt.connectAsync(node.mqttUrl!, { reconnectPeriod: 0 });
  const states: string[] = [];
  watcher.on(
    "message",
    (topic, p) => topic.startsWith("spBv1.0/STATE/") && states.push(`${topic} ${p}`),
  );
  await watcher.subscribeAsync("spBv1.0/STATE/+", { qos: 1 });
  await waitFor(() => states.length === 1, { message: "retained STATE" });
  assert.match(states[0], /^spBv1\.0\/STATE\/twinmill \{"online":true,"timestamp":\d+\}$/);

  const a = await edgeNode(node.mqttUrl!);
  let press = await until(
    node,
    "plant:gw1:press",
    (t) => t.version === 3,
    "DBIRTH: online, metadata, values",
  );
  assert.equal(press.connectivity.status, "online");
  assert.equal(press.reported.Speed, 100);
  assert.deepEqual(press.reported.$sparkplug.metrics.Speed, {
    type: "Int32",
    alias: 10,
    properties: { engUnit: "rpm" },
  });
  let gw = await until(node, "plant:gw1", (t) => t.version === 3, "NBIRTH");
  assert.equal(gw.reported["Inputs/Temp"], 20.5);
  assert.equal(gw.reported.$sparkplug.bdSeq, 0);

  // data by alias, versions exact
  for (let i = 1; i <= 5; i++) {
    a.c.publishDeviceData("press", {
      timestamp: Date.now(),
      metrics: [{ alias: 10, type: "Int32", value: 100 + i }],
    });
  }
  a.c.publishNodeData({ timestamp: Date.now(), metrics: [{ alias: 1, type: "Float", value: 21 }] });
  press = await until(node, "plant:gw1:press", (t) => t.version >= 8, "5 DDATA");
  assert.equal(press.version, 8);
  assert.equal(press.reported.Speed, 105);
  gw = await until(node, "plant:gw1", (t) => t.version >= 4, "NDATA");
  assert.equal(gw.reported["Inputs/Temp"], 21);

  // desired state -> DCMD of the matching metric, typed by the birth
  const patched = await getJson(
    `${node.httpUrl}/v1/twins/plant:gw1:press/desired`,
    json("PATCH", { Setpoint: 60 }),
  );
  assert.equal(patched.status, 200, JSON.stringify(patched.body));
  await waitFor(() => a.dcmd.length > 0, { message: "DCMD at the edge node" });
  assert.equal(a.dcmd[0][0], "press");
  assert.deepEqual(a.dcmd[0][1].metrics?.map((m) => [m.name, m.value]), [["Setpoint", 60]]);

  // a seq gap: NCMD Node Control/Rebirth; the data is applied all the same
  a.tahu.seq += 5;
  a.c.publishDeviceData("press", {
    timestamp: Date.now(),
    metrics: [{ alias: 10, type: "Int32", value: 200 }],
  });
  await waitFor(() => a.ncmd.length > 0, { message: "rebirth request" });
  assert.deepEqual(a.ncmd[0].metrics?.map((m) => [m.name, m.value]), [[
    "Node Control/Rebirth",
    true,
  ]]);
  press = await until(
    node,
    "plant:gw1:press",
    (t) => t.version >= 10,
    "gap data (version 9 was desired)",
  );
  assert.equal(press.reported.Speed, 200);

  // device death
  a.c.publishDeviceDeath("press", { timestamp: Date.now(), metrics: [] });
  press = await until(
    node,
    "plant:gw1:press",
    (t) => t.connectivity.status === "offline",
    "DDEATH",
  );
  assert.equal(press.version, 11);

  // the connection is lost: the broker publishes the NDEATH will
  a.tahu.client.stream.destroy();
  gw = await until(node, "plant:gw1", (t) => t.connectivity.status === "offline", "NDEATH will");
  assert.equal(gw.version, 5);
  await closeEdge(a);

  // the edge node restarts with a new bdSeq
  const b = await edgeNode(node.mqttUrl!, { bdSeq: 1 });
  gw = await until(node, "plant:gw1", (t) => t.version >= 8, "NBIRTH again");
  assert.equal(gw.connectivity.status, "online");
  assert.equal(gw.reported.$sparkplug.bdSeq, 1);
  press = await until(node, "plant:gw1:press", (t) => t.version >= 14, "DBIRTH again");
  assert.equal(press.connectivity.status, "online");
  // a late death of the earlier session (bdSeq 0) is ignored
  const late = await mqtt.connectAsync(node.mqttUrl!, { reconnectPeriod: 0 });
  await late.publishAsync(
    "spBv1.0/plant/NDEATH/gw1",
    Buffer.from(
      encode({ timestamp: Date.now(), metrics: [{ name: "bdSeq", type: "UInt64", value: 0 }] }),
    ),
    { qos: 1 },
  );
  await late.endAsync();
  await stopEdge(b); // NDEATH with bdSeq 1
  gw = await until(node, "plant:gw1", (t) => t.connectivity.status === "offline", "NDEATH");
  assert.equal(gw.version, 9, "the late death changed nothing");
  press = await until(
    node,
    "plant:gw1:press",
    (t) => t.connectivity.status === "offline",
    "devices die with their node",
  );
  assert.equal(press.version, 15);
  const ignored = await metricBy(node, "twinmill_sparkplug_messages_ignored_total", "reason");
  assert.equal(ignored.stale_death, 1);
  const rebirths = await metricBy(node, "twinmill_sparkplug_rebirth_requests_total", "cause");
  assert.equal(rebirths.seq_gap, 1);
  await watcher.endAsync();
});

Deno.test("sparkplug: malformed protobuf, thousands of metrics, unknown aliases: refused, counted, the node carries on", async () => {
  await using node = await startNode();
  const c = await mqtt.connectAsync(node.mqttUrl!, { clientId: "raw-edge", reconnectPeriod: 0 });
  const pub = (topic: string, p: Uint8Array) => c.publishAsync(topic, Buffer.from(p), { qos: 1 });
  await pub("spBv1.0/plant/NBIRTH/bad", new Uint8Array([0x12, 0xff, 0x01]));
  const many: TestMetric[] = Array.from(
    { length: 5000 },
    (_, i) => ({ name: `m${i}`, type: "Int32", value: i }),
  );
  await pub("spBv1.0/plant/NBIRTH/big", encode({ seq: 0, metrics: many }));
  await pub(
    "spBv1.0/plant/NBIRTH/ok",
    encode({ seq: 0, metrics: [{ name: "a", alias: 1, type: "Int32", value: 1 }] }),
  );
  await pub(
    "spBv1.0/plant/NDATA/ok",
    encode({ seq: 1, metrics: [{ alias: 7, type: "Int32", value: 1 }] }),
  );
  await pub(
    "spBv1.0/plant/NDATA/never-born",
    encode({ seq: 1, metrics: [{ alias: 1, type: "Int32", value: 1 }] }),
  );
  const rejected = await waitFor(async () => {
    const r = await metricBy(node, "twinmill_sparkplug_messages_rejected_total", "reason");
    return Object.values(r).reduce((a, b) => a + b, 0) >= 4 ? r : null;
  }, { message: "4 refusals counted" });
  assert.deepEqual(rejected, { malformed: 1, too_many_metrics: 1, unknown_alias: 1, no_birth: 1 });
  assert.equal(await twin(node, "plant:big"), null);
  assert.equal((await twin(node, "plant:ok")).version, 3, "the unknown alias changed nothing");
  assert.equal((await fetch(`${node.httpUrl}/healthz`)).status, 200);
  // logged once per device per minute
  await pub("spBv1.0/plant/NBIRTH/bad", new Uint8Array([0x12, 0xff, 0x01]));
  await waitFor(async () =>
    (await metricBy(node, "twinmill_sparkplug_messages_rejected_total", "reason")).malformed === 2
  );
  assert.equal(
    node.logs.filter((l) => l.includes("Sparkplug message rejected") && l.includes("plant:bad"))
      .length,
    1,
  );
  await c.endAsync();
});

Deno.test("sparkplug: through the bridge — an edge node on the plant's mosquitto becomes twins", async () => {
  await using broker = await startMosquitto();
  await using node = await startNode({ TWINMILL_MQTT_URL: broker.url });
  const watcher = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
  const states: string[] = [];
  watcher.on("message", (_t, p) => states.push(String(p)));
  await watcher.subscribeAsync("spBv1.0/STATE/twinmill", { qos: 1 });
  await waitFor(() => states.some((s) => s.includes('"online":true')), {
    message: "STATE on the plant's broker",
  });
  const a = await edgeNode(broker.url);
  const press = await until(
    node,
    "plant:gw1:press",
    (t) => t.version === 3,
    "DBIRTH via the bridge",
  );
  assert.equal(press.reported.Speed, 100);
  a.c.publishDeviceData("press", {
    timestamp: Date.now(),
    metrics: [{ alias: 10, type: "Int32", value: 7 }],
  });
  await until(node, "plant:gw1:press", (t) => t.version === 4, "DDATA via the bridge");
  await getJson(
    `${node.httpUrl}/v1/twins/plant:gw1:press/desired`,
    json("PATCH", { Setpoint: 61 }),
  );
  await waitFor(() => a.dcmd.length > 0, { message: "DCMD through the plant's broker" });
  await stopEdge(a);
  await until(node, "plant:gw1", (t) => t.connectivity.status === "offline", "NDEATH");
  await watcher.endAsync();

  // the bridge's and the Sparkplug host's metrics, with samples, pass promtool too
  const scrape = await (await fetch(`${node.httpUrl}/metrics`)).text();
  for (
    const sample of [
      "twinmill_bridge_messages_received_total{redelivered=",
      "twinmill_bridge_messages_published_total{kind=",
      "twinmill_sparkplug_messages_total{type=",
      "twinmill_sparkplug_metric_writes_total{source=",
      "twinmill_bridge_connected ",
    ]
  ) {
    assert.ok(scrape.includes(sample), `the scrape has ${sample}`);
  }
  await assertPromtoolClean(scrape);
});

Deno.test("sparkplug: device authentication — an edge node logs in as its twin, is held to its own topics", async () => {
  await using node = await startNode({ TWINMILL_MQTT_AUTH: "on" });
  const put = await getJson(`${node.httpUrl}/v1/twins/plant:gw1`, json("PUT", { attributes: {} }));
  assert.equal(put.status, 201, JSON.stringify(put.body));
  const issued = await getJson(`${node.httpUrl}/v1/twins/plant:gw1/credentials`, json("POST"));
  assert.equal(issued.status, 201, JSON.stringify(issued.body));
  const token: string = issued.body.credentials.token;
  const a = await edgeNode(node.mqttUrl!, { username: "plant:gw1", password: token });
  await until(
    node,
    "plant:gw1:press",
    (t) => t.version === 3,
    "DBIRTH of an authenticated edge node",
  );
  // another edge node's topics: refused
  a.tahu.client.publish("spBv1.0/plant/NBIRTH/gw2", encode({ seq: 0, metrics: [] }));
  await waitFor(async () =>
    (await metricBy(node, "twinmill_sparkplug_messages_rejected_total", "reason")).acl_denied === 1
  );
  assert.equal(await twin(node, "plant:gw2"), null);
  // its commands reach it (its NCMD/DCMD subscriptions were granted)
  await getJson(
    `${node.httpUrl}/v1/twins/plant:gw1:press/desired`,
    json("PATCH", { Setpoint: 70 }),
  );
  await waitFor(() => a.dcmd.length > 0, { message: "DCMD to the authenticated edge node" });
  // its will still takes it offline
  a.tahu.client.stream.destroy();
  await until(
    node,
    "plant:gw1",
    (t) => t.connectivity.status === "offline",
    "NDEATH will under auth",
  );
  await closeEdge(a);
});

Deno.test("sparkplug: metrics reach InfluxDB like any telemetry, one field per metric name", async () => {
  await using influx = await startInfluxd();
  await using node = await startNode({ INFLUX_URL: influx.url, INFLUX_API: "v1", INFLUX_DB: "sp" });
  const a = await edgeNode(node.mqttUrl!);
  // (a point's time is the payload's timestamp: two messages of one device stamped in the
  // same millisecond are one point, as for any telemetry with the same `ts`)
  const t0 = Date.now() + 1000;
  for (let i = 1; i <= 5; i++) {
    a.c.publishDeviceData("press", {
      timestamp: t0 + i,
      metrics: [{ alias: 10, type: "Int32", value: 100 + i }],
    });
  }
  const count = async (field: string, device: string) => {
    const r = await influx.query(
      `SELECT count("${field}") FROM "telemetry" WHERE "device" = '${device}'`,
      "sp",
    );
    return r?.results?.[0]?.series?.[0]?.values?.[0]?.[1] ?? 0;
  };
  // the DBIRTH's value and 5 DDATA; the NBIRTH's "Inputs/Temp" (a field name with a slash)
  await waitFor(async () => (await count("Speed", "plant:gw1:press")) === 6, {
    message: "6 Speed points",
  });
  await waitFor(async () => (await count("Inputs/Temp", "plant:gw1")) === 1, {
    message: "1 Inputs/Temp point",
  });
  await stopEdge(a);
});
