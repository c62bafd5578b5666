/**
 * End to end: MQTT telemetry through a real twinmill node into InfluxDB 1.x (v1 API) and
 * VictoriaMetrics (v2 API), the history endpoint, and delivery while InfluxDB is down —
 * including a `kill -9` of the node with points still unwritten.
 */
import assert from "node:assert/strict";
import {
  connectDevice,
  getJson,
  type InfluxServer,
  metric,
  type NodeProcess,
  startInfluxd,
  startNode,
  startVictoriaMetrics,
  waitFor,
  waitForInfluxCount,
} from "../harness/mod.ts";

/** A minute boundary 2 hours ago: 1 s apart, 200 points span four 1-minute buckets. */
const BASE_TS = Math.floor((Date.now() - 2 * 3_600_000) / 60_000) * 60_000;

async function putAttributes(node: NodeProcess, id: string, attributes: Record<string, unknown>) {
  const { status, body } = await getJson(`${node.httpUrl}/v1/twins/${id}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ attributes }),
  });
  assert.ok(
    status === 200 || status === 201,
    `PUT /v1/twins/${id}: ${status} ${JSON.stringify(body)}`,
  );
}

const telemetry = (i: number) => ({
  temp: i + 0.5,
  mode: i % 2 === 0 ? "auto" : "manual",
  running: i % 3 === 0,
  ts: BASE_TS + i * 1000,
});

Deno.test("v1: telemetry reaches InfluxDB with tags and field types; history reads it back", async (t) => {
  await using influx = await startInfluxd();
  const db = "e2e";
  await using node = await startNode({ INFLUX_URL: influx.url, INFLUX_API: "v1", INFLUX_DB: db });
  const id = "press-e2e.1";
  const N = 200;

  await t.step("200 QoS 1 messages become exactly 200 points", async () => {
    await putAttributes(node, id, { type: "press", site: "A", line: "L1" });
    {
      await using dev = await connectDevice(node, "dev-e2e-1");
      await Promise.all(
        Array.from({ length: N }, (_, i) => dev.publish(`twins/${id}/telemetry`, telemetry(i))),
      );
    }
    await waitForInfluxCount(influx, db, id, N);
    const twin = await getJson(`${node.httpUrl}/v1/twins/${id}`);
    assert.equal(twin.body.version, N + 1, "PUT + 200 telemetry messages");
    await waitFor(async () => (await metric(node, "twinmill_influx_points_written_total")) >= N, {
      message: "points counted as written",
    });
  });

  await t.step("the series carries the device, type, site and line tags", async () => {
    const r = await influx.query(
      `SELECT count("temp") FROM "telemetry" WHERE "device" = '${id}' GROUP BY *`,
      db,
    );
    const series = r.results[0].series;
    assert.equal(series.length, 1, `one series: ${JSON.stringify(series)}`);
    assert.deepEqual(series[0].tags, { device: id, line: "L1", site: "A", type: "press" });
    assert.equal(series[0].values[0][1], N);

    const tv = await influx.query(
      `SHOW TAG VALUES FROM "telemetry" WITH KEY IN ("device", "type", "site", "line")`,
      db,
    );
    const pairs = (tv.results[0].series[0].values as string[][]).map(([k, v]) => `${k}=${v}`);
    assert.deepEqual(pairs.sort(), [`device=${id}`, "line=L1", "site=A", "type=press"]);
  });

  await t.step("string and boolean fields keep their types", async () => {
    const fk = await influx.query(`SHOW FIELD KEYS FROM "telemetry"`, db);
    const types = Object.fromEntries(fk.results[0].series[0].values as string[][]);
    assert.deepEqual(types, { mode: "string", running: "boolean", temp: "float" });

    const r = await influx.query(
      `SELECT "temp", "mode", "running" FROM "telemetry" WHERE "device" = '${id}' ` +
        `AND time >= ${BASE_TS + 2000}ms AND time <= ${BASE_TS + 3000}ms`,
      db,
    );
    const rows = r.results[0].series[0].values.map((v: unknown[]) => v.slice(1));
    assert.deepEqual(rows, [[2.5, "auto", false], [3.5, "manual", true]]);
  });

  const from = new Date(BASE_TS).toISOString();
  const to = new Date(BASE_TS + (N - 1) * 1000).toISOString();
  const history = (q: Record<string, string>) =>
    getJson(`${node.httpUrl}/v1/twins/${id}/history?${new URLSearchParams(q)}`);

  await t.step("history returns the raw points", async () => {
    const { status, body } = await history({ field: "temp", from, to });
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.twin, id);
    assert.equal(body.field, "temp");
    assert.equal(body.points.length, N);
    assert.deepEqual(
      body.points,
      Array.from({ length: N }, (_, i) => ({
        ts: new Date(BASE_TS + i * 1000).toISOString(),
        value: i + 0.5,
      })),
    );
    const strings = await history({
      field: "mode",
      from,
      to: new Date(BASE_TS + 1000).toISOString(),
    });
    assert.equal(strings.status, 200, JSON.stringify(strings.body));
    assert.deepEqual(strings.body.points.map((p: { value: unknown }) => p.value), [
      "auto",
      "manual",
    ]);
  });

  await t.step("history every=1m&agg=max aggregates per minute", async () => {
    const { status, body } = await history({ field: "temp", from, to, every: "1m", agg: "max" });
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.agg, "max");
    assert.equal(body.every, "1m");
    // Minutes start at i = 0, 60, 120, 180; the last holds i = 180..199.
    assert.deepEqual(body.points, [
      { ts: new Date(BASE_TS).toISOString(), value: 59.5 },
      { ts: new Date(BASE_TS + 60_000).toISOString(), value: 119.5 },
      { ts: new Date(BASE_TS + 120_000).toISOString(), value: 179.5 },
      { ts: new Date(BASE_TS + 180_000).toISOString(), value: 199.5 },
    ]);
  });

  await t.step("history without field is a 400 in the error envelope", async () => {
    const { status, body } = await history({ from, to });
    assert.equal(status, 400);
    assert.equal(typeof body.error?.code, "string");
    assert.equal(typeof body.error?.message, "string");
    assert.match(body.error.message, /field/);
  });
});

Deno.test("history without INFLUX_URL answers 503 history_unavailable", async () => {
  await using node = await startNode();
  await putAttributes(node, "no-influx", { type: "press" });
  const { status, body } = await getJson(
    `${node.httpUrl}/v1/twins/no-influx/history?field=temp`,
  );
  assert.equal(status, 503, JSON.stringify(body));
  assert.equal(body.error.code, "history_unavailable");
  assert.equal(typeof body.error.message, "string");
});

/** Starts a v1 node, and waits until its database exists (a warm-up point is written). */
async function warmUp(influx: InfluxServer, node: NodeProcess, db: string): Promise<void> {
  {
    await using dev = await connectDevice(node, "dev-warmup");
    await dev.publish("twins/warmup/telemetry", { temp: 1, ts: BASE_TS });
  }
  await waitForInfluxCount(influx, db, "warmup", 1);
}

Deno.test("InfluxDB down: acknowledged points are buffered, retried, and all arrive", async () => {
  await using influx = await startInfluxd();
  const db = "outage";
  await using node = await startNode({ INFLUX_URL: influx.url, INFLUX_API: "v1", INFLUX_DB: db });
  await warmUp(influx, node, db);
  const id = "press-outage";
  const N = 300;

  await influx.stop();
  {
    await using dev = await connectDevice(node, "dev-outage");
    // Every publish resolves on its PUBACK although InfluxDB is down.
    await Promise.all(
      Array.from({ length: N }, (_, i) => dev.publish(`twins/${id}/telemetry`, telemetry(i))),
    );
  }
  await waitFor(async () => (await metric(node, "twinmill_influx_write_retries_total")) > 0, {
    message: "twinmill_influx_write_retries_total > 0 while InfluxDB is down",
  });
  assert.ok((await metric(node, "twinmill_inbound_log_pending")) > 0, "points are unretired");
  await waitFor(async () => (await getJson(`${node.httpUrl}/v1/twins/${id}`)).body.version === N, {
    message: `twin ${id} at version ${N}`,
  });

  await influx.start();
  await waitForInfluxCount(influx, db, id, N);
  await waitFor(async () => (await metric(node, "twinmill_inbound_log_pending")) === 0, {
    message: "twinmill_inbound_log_pending back to 0",
  });
  assert.equal(await metric(node, "twinmill_influx_buffer_overflow_total"), 0);
});

Deno.test("InfluxDB down and node killed with SIGKILL: the restarted node replays every acknowledged point", async () => {
  await using influx = await startInfluxd();
  const db = "crash";
  const env = { INFLUX_URL: influx.url, INFLUX_API: "v1", INFLUX_DB: db };
  await using first = await startNode(env);
  await warmUp(influx, first, db);
  const id = "press-crash";
  const N = 300;

  await influx.stop();
  {
    await using dev = await connectDevice(first, "dev-crash");
    await Promise.all(
      Array.from({ length: N }, (_, i) => dev.publish(`twins/${id}/telemetry`, telemetry(i))),
    );
  }
  // Every message is acknowledged (durable) but none of its points can be written yet.
  assert.ok((await metric(first, "twinmill_inbound_log_pending")) > 0, "points are unretired");
  assert.equal(await first.kill("SIGKILL"), 137);

  await using second = await first.restart();
  await second.waitForLog((r) => r.msg === "replayed unretired inbound messages");
  await influx.start();
  await waitForInfluxCount(influx, db, id, N);
  await waitFor(async () => (await metric(second, "twinmill_inbound_log_pending")) === 0, {
    message: "twinmill_inbound_log_pending back to 0 after the replay",
  });
  const twin = await getJson(`${second.httpUrl}/v1/twins/${id}`);
  assert.equal(twin.body.version, N, "each message applied exactly once across the crash");
  assert.deepEqual(twin.body.reported, {
    temp: N - 1 + 0.5,
    mode: "manual",
    running: (N - 1) % 3 === 0,
  });
});

Deno.test("v2: telemetry reaches VictoriaMetrics as telemetry_temp{device}", async () => {
  await using vm = await startVictoriaMetrics();
  await using node = await startNode({
    INFLUX_URL: vm.url,
    INFLUX_API: "v2",
    INFLUX_BUCKET: "b",
    INFLUX_ORG: "o",
    INFLUX_TOKEN: "t",
  });
  const id = "press-vm";
  const base = Math.floor(Date.now() / 1000) * 1000 - 60_000;
  const temps = [21.5, 22, 22.5, 30.25, 19];
  await putAttributes(node, id, { type: "press", site: "B" });
  {
    await using dev = await connectDevice(node, "dev-vm");
    for (const [i, temp] of temps.entries()) {
      await dev.publish(`twins/${id}/telemetry`, { temp, ts: base + i * 1000 });
    }
  }
  const match = `telemetry_temp{device="${id}"}`;
  const exported = await waitFor(async () => {
    await vm.flush();
    const lines = (await vm.exportSeries(match)).trim();
    if (!lines) return null;
    // deno-lint-ignore no-explicit-any
    const series: any[] = lines.split("\n").map((l) => JSON.parse(l));
    const n = series.reduce((s: number, x: { values: number[] }) => s + x.values.length, 0);
    return n >= temps.length ? series : null;
  }, { timeoutMs: 15_000, message: `${temps.length} samples of ${match} in VictoriaMetrics` });
  assert.ok(exported);
  assert.equal(exported.length, 1, JSON.stringify(exported));
  assert.equal(exported[0].metric.__name__, "telemetry_temp");
  assert.equal(exported[0].metric.device, id);
  assert.equal(exported[0].metric.type, "press");
  assert.equal(exported[0].metric.site, "B");
  assert.deepEqual(exported[0].values, temps);
  assert.deepEqual(exported[0].timestamps, temps.map((_, i) => base + i * 1000));
});
