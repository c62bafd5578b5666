import assert from "node:assert/strict";
import { createMetrics } from "../../obs/metrics.ts";
import { createLogger } from "../../obs/log.ts";
import type { DeviceBody, DeviceTopic } from "../../../actors/validate.ts";
import type { IngestPort } from "../../bridges/ingest.ts";
import { SparkplugHost } from "./host.ts";
import { sparkplugMetrics } from "./notices.ts";
import type { SparkplugAttachment } from "./port.ts";
import { encode, tahuDecode, type TestMetric } from "./testing.ts";

/** An ingest that keeps what it is given (durable at once, or failing when told). */
function memoryIngest() {
  const got: { topic: DeviceTopic; body: DeviceBody; raw: string; payload: string }[] = [];
  let fail = false;
  const ingest: IngestPort = {
    submit(topic, body, raw, payload) {
      if (fail) return Promise.reject(new Error("disk full"));
      got.push({ topic, body, raw, payload: new TextDecoder().decode(payload) });
      return Promise.resolve();
    },
  };
  return { ingest, got, failing: (f: boolean) => (fail = f) };
}

function setup(o: { maxMetrics?: number } = {}) {
  const mem = memoryIngest();
  const lines: string[] = [];
  let now = 1_000;
  const host = new SparkplugHost({
    hostId: "twinmill",
    ingest: mem.ingest,
    logger: createLogger("info", "test", (l) => lines.push(l)),
    metrics: sparkplugMetrics(createMetrics().registry),
    maxMetrics: o.maxMetrics,
    now: () => now,
  });
  const sent: { topic: string; payload: Uint8Array; qos: number; retain: boolean }[] = [];
  const sp: SparkplugAttachment = host.attach({
    name: "mqtt",
    publish: (topic, payload, opts) => {
      sent.push({ topic, payload, ...opts });
      return Promise.resolve();
    },
  });
  const msg = (topic: string, p: { seq?: number; timestamp?: number; metrics: TestMetric[] }) =>
    sp.onMessage(topic, encode(p), { clientId: "edge" });
  return { host, sp, mem, sent, lines, msg, tick: (ms: number) => (now += ms) };
}

const NODE: TestMetric[] = [
  { name: "Node Control/Rebirth", type: "Boolean", value: false },
  { name: "bdSeq", type: "UInt64", value: 0 },
];
const DEVICE: TestMetric[] = [
  {
    name: "Temp",
    alias: 1,
    type: "Float",
    value: 20.5,
    properties: { engUnit: { type: "String", value: "C" } },
  },
  { name: "Setpoint", alias: 2, type: "Int32", value: 50 },
];

async function born(s: ReturnType<typeof setup>) {
  assert.deepEqual(
    await s.msg("spBv1.0/plant/NBIRTH/gw1", { seq: 0, timestamp: 5, metrics: NODE }),
    { ok: true },
  );
  assert.deepEqual(
    await s.msg("spBv1.0/plant/DBIRTH/gw1/press", { seq: 1, timestamp: 6, metrics: DEVICE }),
    { ok: true },
  );
}

Deno.test("sparkplug host: births and data become canonical twin messages (as replay reads them)", async () => {
  const s = setup();
  await born(s);
  await s.msg("spBv1.0/plant/DDATA/gw1/press", {
    seq: 2,
    timestamp: 7,
    metrics: [{ alias: 1, type: "Float", value: 21 }],
  });
  assert.deepEqual(s.mem.got.map((g) => `${g.raw} ${g.payload}`), [
    "twins/plant:gw1/status online",
    'twins/plant:gw1/reported {"$sparkplug":{"bdSeq":0,"metrics":{"Node Control/Rebirth":{"type":"Boolean","alias":null,"properties":null},"bdSeq":{"type":"UInt64","alias":null,"properties":null}}}}',
    'twins/plant:gw1/telemetry {"Node Control/Rebirth":false,"ts":5}',
    "twins/plant:gw1:press/status online",
    'twins/plant:gw1:press/reported {"$sparkplug":{"metrics":{"Temp":{"type":"Float","alias":1,"properties":{"engUnit":"C"}},"Setpoint":{"type":"Int32","alias":2,"properties":null}}}}',
    'twins/plant:gw1:press/telemetry {"Temp":20.5,"Setpoint":50,"ts":6}',
    'twins/plant:gw1:press/telemetry {"Temp":21,"ts":7}',
  ]);
  assert.deepEqual(s.mem.got[6].body, { kind: "telemetry", fields: { Temp: 21 }, ts: 7 });
  assert.equal(s.host.devicesConnected, 2);
  assert.equal(s.host.connection("plant:gw1:press")?.protocol, "sparkplug b (mqtt)");
  assert.deepEqual(s.host.status(), {
    hostId: "twinmill",
    sides: [{ name: "mqtt", connected: false }],
    edgeNodes: 1,
    born: 2,
  });
});

Deno.test("sparkplug host: STATE birth on connect, with the will's timestamp; offline on detach", async () => {
  const s = setup();
  const will = s.sp.will();
  assert.deepEqual([will.topic, will.qos, will.retain], ["spBv1.0/STATE/twinmill", 1, true]);
  assert.equal(new TextDecoder().decode(will.payload), '{"online":false,"timestamp":1000}');
  s.tick(50);
  await s.sp.connected();
  assert.deepEqual(
    s.sent.map((p) => [p.topic, new TextDecoder().decode(p.payload), p.qos, p.retain]),
    [
      ["spBv1.0/STATE/twinmill", '{"online":true,"timestamp":1000}', 1, true],
    ],
  );
  // our own offline STATE seen while connected (a stale will): online again
  await s.sp.onMessage("spBv1.0/STATE/twinmill", will.payload);
  assert.equal(s.sent.length, 2);
  await s.sp.detach();
  assert.equal(new TextDecoder().decode(s.sent[2].payload), '{"online":false,"timestamp":1000}');
});

Deno.test("sparkplug host: a seq gap and data before a birth publish NCMD Node Control/Rebirth", async () => {
  const s = setup();
  const early = await s.msg("spBv1.0/plant/NDATA/gw1", { seq: 3, metrics: [] });
  assert.deepEqual(early, { ok: false, reason: "no_birth", device: "plant:gw1", code: 0x80 });
  assert.equal(s.sent.length, 1);
  assert.equal(s.sent[0].topic, "spBv1.0/plant/NCMD/gw1");
  assert.equal(s.sent[0].qos, 0);
  const p = tahuDecode(s.sent[0].payload);
  assert.deepEqual(p.metrics?.map((m) => [m.name, m.value]), [["Node Control/Rebirth", true]]);
  await born(s);
  await s.msg("spBv1.0/plant/DDATA/gw1/press", {
    seq: 9,
    metrics: [{ alias: 1, type: "Float", value: 1 }],
  });
  assert.equal(s.sent.length, 2, "a gap: rebirth asked");
  assert.equal(s.mem.got.at(-1)?.payload, '{"Temp":1}', "its data applied all the same");
});

Deno.test("sparkplug host: malformed, oversized and unauthorized messages get a reason and code, counted", async () => {
  const s = setup({ maxMetrics: 5 });
  const bad = await s.sp.onMessage("spBv1.0/plant/NBIRTH/gw1", new Uint8Array([0x12, 0xff]));
  assert.deepEqual(bad, { ok: false, reason: "malformed", device: "plant:gw1", code: 0x99 });
  const many = Array.from({ length: 6 }, (_, i) => ({ name: `m${i}`, type: "Int32", value: i }));
  assert.equal(
    (await s.msg("spBv1.0/plant/NBIRTH/gw1", { seq: 0, metrics: many }) as { code: number }).code,
    0x95,
  );
  const big = await s.sp.onMessage("spBv1.0/plant/NBIRTH/gw1", new Uint8Array(300 * 1024));
  assert.equal((big as { reason: string }).reason, "too_large");
  const denied = await s.sp.onMessage(
    "spBv1.0/plant/NBIRTH/gw2",
    encode({ seq: 0, metrics: NODE }),
    undefined,
    {
      restricted: true,
      twin: "plant:gw1",
    },
  );
  assert.deepEqual(denied, { ok: false, reason: "acl_denied", device: "plant:gw1", code: 0x87 });
  assert.equal(
    (await s.sp.onMessage("spBv1.0/bad group/NBIRTH/gw1", new Uint8Array()) as { reason: string })
      .reason,
    "bad_id",
  );
  assert.deepEqual(s.host.rejections("plant:gw1").map((r) => r.reason), [
    "malformed",
    "too_many_metrics",
    "too_large",
    "acl_denied",
  ]);
  assert.equal(s.mem.got.length, 0);
  // logged once per device and reason per minute
  await s.sp.onMessage("spBv1.0/plant/NBIRTH/gw1", new Uint8Array([0x12, 0xff]));
  assert.equal(s.lines.filter((l) => l.includes('"malformed"')).length, 1);
});

Deno.test("sparkplug host: desired state and commands become DCMD writes of the birth's metrics", async () => {
  const s = setup();
  await born(s);
  await s.host.publishDesired("plant:gw1:press", { Setpoint: 60, other: 1, Temp: "hot" });
  assert.equal(s.sent.length, 1);
  assert.equal(s.sent[0].topic, "spBv1.0/plant/DCMD/gw1/press");
  const w = tahuDecode(s.sent[0].payload);
  assert.deepEqual(w.metrics?.map((m) => [m.name, Number(m.alias), m.type, m.value]), [[
    "Setpoint",
    2,
    "Int32",
    60,
  ]]);
  await s.host.publishDesired("plant:gw1:press", { Setpoint: 60 });
  assert.equal(s.sent.length, 1, "unchanged: not written again");
  const cmd = (id: string, name: string, value: unknown) =>
    ({
      id,
      name,
      args: { value },
      mode: "async",
      status: "pending",
      source: "api",
      createdAt: 0,
      expiresAt: 1e15,
      deliveries: 0,
    }) as never;
  assert.deepEqual(
    await s.host.deliverCommands("plant:gw1:press", [
      cmd("c1", "Setpoint", 70),
      cmd("c2", "nope", 1),
    ]),
    ["c1"],
  );
  assert.deepEqual(
    await s.host.deliverCommands("plant:gw9", [cmd("c3", "Setpoint", 70)]),
    [],
    "not born here",
  );
  await s.host.publishDesired("plain-twin", { Setpoint: 1 });
  assert.equal(s.sent.length, 2);
});

Deno.test("sparkplug host: a message that cannot be made durable is not acknowledged; the edge node is asked to rebirth", async () => {
  const s = setup();
  await born(s);
  s.mem.failing(true);
  await assert.rejects(
    s.msg("spBv1.0/plant/NDATA/gw1", {
      seq: 2,
      metrics: [{ name: "Node Control/Rebirth", type: "Boolean", value: false }],
    }),
  );
  s.mem.failing(false);
  // the resend (same seq) is no duplicate now: the node must be born again
  const again = await s.msg("spBv1.0/plant/NDATA/gw1", { seq: 2, metrics: [] });
  assert.equal((again as { reason: string }).reason, "no_birth");
  assert.equal(s.sent.at(-1)?.topic, "spBv1.0/plant/NCMD/gw1");
});
