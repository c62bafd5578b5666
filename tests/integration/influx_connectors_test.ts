/**
 * One point per accepted message whatever connector brought it: a burst of messages without a
 * time, published to the plant's mosquitto and bridged (`TWINMILL_MQTT_URL`), or sent as
 * Sparkplug B NDATA without a payload timestamp, reaches influxd as exactly one point each
 * (their arrival times share milliseconds; the sub-millisecond part comes from the durable
 * sequence, as for the embedded broker: `influx_points_test.ts`).
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { Buffer } from "node:buffer";
import {
  getJson,
  type InfluxServer,
  mosquittoPub,
  type NodeProcess,
  startInfluxd,
  startMosquitto,
  startNode,
  waitFor,
  waitForInfluxCount,
} from "../harness/mod.ts";
import { encode } from "../../src/connectors/sparkplug/testing.ts";

async function version(node: NodeProcess, id: string): Promise<number> {
  const { status, body } = await getJson(`${node.httpUrl}/v1/twins/${id}`);
  return status === 200 ? body.version : 0;
}

/** The times of `id`'s `temp` points: all distinct, some sharing a millisecond. */
async function assertDistinctTimes(influx: InfluxServer, db: string, id: string, n: number) {
  const raw = await influx.query(`SELECT "temp" FROM "telemetry" WHERE "device" = '${id}'`, db);
  const times: string[] = raw.results[0].series[0].values.map((v: unknown[]) => v[0] as string);
  assert.equal(new Set(times).size, n, `${n} distinct timestamps`);
  const ms = new Set(times.map((t) => Date.parse(t))).size;
  assert.ok(ms < n, `some points share a millisecond (${ms} distinct ms)`);
}

Deno.test("bridge: 1,000 messages without ts published to the plant's broker are 1,000 points; history agrees", async () => {
  await using influx = await startInfluxd();
  await using broker = await startMosquitto({ config: ["max_queued_messages 100000"] });
  const db = "bridged";
  await using node = await startNode({
    TWINMILL_MQTT_URL: broker.url,
    INFLUX_URL: influx.url,
    INFLUX_API: "v1",
    INFLUX_DB: db,
  });
  await node.waitForLog((r) => r.msg === "bridge subscribed", 15_000);
  const id = "press-bridged-burst";
  const t0 = new Date(Date.now() - 60_000).toISOString();
  const lines = Array.from({ length: 1000 }, (_, i) => JSON.stringify({ temp: i })).join("\n");
  const r = await mosquittoPub(
    ["-h", "127.0.0.1", "-p", String(broker.port), "-q", "1", "-M", "100", "-l"].concat(
      ["-i", "burst-bridged", "-t", `twins/${id}/telemetry`],
    ),
    lines + "\n",
  );
  assert.equal(r.code, 0, `mosquitto_pub: ${r.stderr}`);
  await waitFor(async () => (await version(node, id)) >= 1000, {
    timeoutMs: 30_000,
    message: "the bridge applies all 1,000",
  });
  assert.equal(await version(node, id), 1000);
  await waitForInfluxCount(influx, db, id, 1000, 30_000);
  await assertDistinctTimes(influx, db, id, 1000);

  const { status, body } = await getJson(
    `${node.httpUrl}/v1/twins/${id}/history?${new URLSearchParams({
      field: "temp",
      from: t0,
      to: new Date(Date.now() + 60_000).toISOString(),
      every: "1h",
      agg: "count",
    })}`,
  );
  assert.equal(status, 200, JSON.stringify(body));
  const total = body.points.reduce((s: number, p: { value: number }) => s + p.value, 0);
  assert.equal(total, 1000, `history count: ${JSON.stringify(body.points)}`);
});

Deno.test("sparkplug: 1,000 NDATA without a payload timestamp are 1,000 points (plus the birth's)", async () => {
  await using influx = await startInfluxd();
  const db = "sparkplug";
  await using node = await startNode({ INFLUX_URL: influx.url, INFLUX_API: "v1", INFLUX_DB: db });
  const c = await mqtt.connectAsync(node.mqttUrl!, { clientId: "edge-burst", reconnectPeriod: 0 });
  const pub = (topic: string, p: Uint8Array) => c.publishAsync(topic, Buffer.from(p), { qos: 1 });
  const id = "plant:burst";
  const N = 1000;
  // no timestamp anywhere: the node stamps each message with its arrival time
  await pub(
    "spBv1.0/plant/NBIRTH/burst",
    encode({
      seq: 0,
      metrics: [
        { name: "bdSeq", type: "UInt64", value: 0 },
        { name: "temp", alias: 1, type: "Int32", value: -1 },
      ],
    }),
  );
  const all: Promise<unknown>[] = [];
  for (let i = 1; i <= N; i++) {
    const payload = encode({ seq: i % 256, metrics: [{ alias: 1, type: "Int32", value: i }] });
    all.push(pub("spBv1.0/plant/NDATA/burst", payload));
  }
  await Promise.all(all);
  await c.endAsync();
  // the birth (reported + its values) and one version per NDATA
  await waitFor(async () => (await version(node, id)) >= N, { message: `${id} applies all` });
  await waitForInfluxCount(influx, db, id, N + 1, 30_000);
  await assertDistinctTimes(influx, db, id, N + 1);
});
