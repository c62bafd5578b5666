/**
 * Every accepted message is its own point: bursts of messages without `ts` (many in one
 * millisecond) reach InfluxDB 1.x and VictoriaMetrics as exactly one point each, and a
 * `kill -9` in the middle of a burst neither loses nor doubles a point (the replay rewrites
 * the same point: its timestamp's sub-millisecond part comes from the durable sequence).
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import {
  getJson,
  influxCount,
  metric,
  mosquittoPub,
  type NodeProcess,
  startInfluxd,
  startNode,
  startVictoriaMetrics,
  waitFor,
  waitForInfluxCount,
} from "../harness/mod.ts";

/** `n` telemetry lines without `ts`, one JSON object each (for `mosquitto_pub -l`). */
const lines = (n: number) =>
  Array.from({ length: n }, (_, i) => JSON.stringify({ temp: i, n: i })).join("\n") + "\n";

/** One device publishes `n` QoS 1 messages as fast as mosquitto_pub can (100 in flight). */
async function burst(node: NodeProcess, id: string, n: number) {
  const r = await mosquittoPub(
    ["-h", "127.0.0.1", "-p", String(node.mqttPort), "-q", "1", "-M", "100", "-l"].concat(
      ["-i", `burst-${id}`, "-t", `twins/${id}/telemetry`],
    ),
    lines(n),
  );
  assert.equal(r.code, 0, `mosquitto_pub: ${r.stderr}`);
}

async function version(node: NodeProcess, id: string): Promise<number> {
  const { status, body } = await getJson(`${node.httpUrl}/v1/twins/${id}`);
  return status === 200 ? body.version : 0;
}

Deno.test("v1: 1,000 messages without ts in one burst are 1,000 points; history agrees", async () => {
  await using influx = await startInfluxd();
  const db = "burst";
  await using node = await startNode({ INFLUX_URL: influx.url, INFLUX_API: "v1", INFLUX_DB: db });
  const id = "press-burst";
  const t0 = new Date(Date.now() - 60_000).toISOString();
  await burst(node, id, 1000);
  assert.equal(await version(node, id), 1000);
  await waitForInfluxCount(influx, db, id, 1000, 30_000);

  // the points share milliseconds (that is what used to merge them) and differ below them
  const raw = await influx.query(
    `SELECT "temp" FROM "telemetry" WHERE "device" = '${id}'`,
    db,
  );
  const times: string[] = raw.results[0].series[0].values.map((v: unknown[]) => v[0] as string);
  const ms = new Set(times.map((t) => Date.parse(t)));
  assert.equal(new Set(times).size, 1000, "1,000 distinct timestamps");
  assert.ok(ms.size < 1000, `some points share a millisecond (${ms.size} distinct ms)`);

  const to = new Date(Date.now() + 60_000).toISOString();
  const { status, body } = await getJson(
    `${node.httpUrl}/v1/twins/${id}/history?${new URLSearchParams({
      field: "temp",
      from: t0,
      to,
      every: "1h",
      agg: "count",
    })}`,
  );
  assert.equal(status, 200, JSON.stringify(body));
  const total = body.points.reduce((s: number, p: { value: number }) => s + p.value, 0);
  assert.equal(total, 1000, `history count: ${JSON.stringify(body.points)}`);
  const rawHistory = await getJson(
    `${node.httpUrl}/v1/twins/${id}/history?${new URLSearchParams({
      field: "temp",
      from: t0,
      to,
    })}`,
  );
  assert.equal(rawHistory.body.points.length, 1000, "raw history has every point");
});

Deno.test("v2 (VictoriaMetrics): 1,000 messages without ts in one burst are 1,000 samples", async () => {
  await using vm = await startVictoriaMetrics();
  await using node = await startNode({
    INFLUX_URL: vm.url,
    INFLUX_API: "v2",
    INFLUX_BUCKET: "b",
    INFLUX_ORG: "o",
    INFLUX_TOKEN: "t",
  });
  const id = "press-vm-burst";
  await burst(node, id, 1000);
  assert.equal(await version(node, id), 1000);
  const match = `telemetry_temp{device="${id}"}`;
  let n = 0;
  await waitFor(async () => {
    await vm.flush();
    const text = (await vm.exportSeries(match)).trim();
    n = text ? text.split("\n").reduce((s, l) => s + JSON.parse(l).values.length, 0) : 0;
    assert.ok(n <= 1000, `${n} samples, more than the 1,000 sent`);
    return n === 1000;
  }, { timeoutMs: 30_000, message: `1,000 samples of ${match}` }).catch((err) => {
    throw new Error(`${err.message} (last count ${n})`, { cause: err });
  });
  // every value arrived once
  const values = (await vm.exportSeries(match)).trim().split("\n")
    .flatMap((l) => JSON.parse(l).values as number[]);
  assert.deepEqual([...values].sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i));
  // VictoriaMetrics answers no InfluxQL: history says so (502), it does not fail inside (500)
  const history = await getJson(
    `${node.httpUrl}/v1/twins/${id}/history?field=temp&every=1h&agg=count`,
  );
  assert.equal(history.status, 502, JSON.stringify(history.body));
  assert.equal(history.body.error.code, "history_failed");
  assert.match(history.body.error.message, /history needs InfluxQL/);
});

Deno.test("kill -9 in the middle of a 5,000-message burst: points == the twin's version", async () => {
  await using influx = await startInfluxd();
  const db = "midburst";
  const env = { INFLUX_URL: influx.url, INFLUX_API: "v1", INFLUX_DB: db };
  await using first = await startNode(env);
  const id = "press-midburst";
  const N = 5000;

  // count the PUBACKs ourselves: each one is a promise that the message survives
  const client = await mqtt.connectAsync(first.mqttUrl!, {
    clientId: "dev-midburst",
    reconnectPeriod: 0,
  });
  client.on("error", () => {}); // the connection dies with the node
  let acked = 0;
  for (let i = 0; i < N; i++) {
    // publishes still queued when the connection dies never settle: they are not counted
    client.publishAsync(`twins/${id}/telemetry`, JSON.stringify({ temp: i }), { qos: 1 })
      .then(() => void acked++, () => {});
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
  const v = await version(second, id);
  assert.ok(v >= acked, `version ${v} holds all ${acked} acknowledged messages`);
  await waitForInfluxCount(influx, db, id, v, 30_000);
  // and it stays there: nothing written twice after the count first matched
  await second.kill("SIGTERM");
  assert.equal(await influxCount(influx, db, id), v);
});
