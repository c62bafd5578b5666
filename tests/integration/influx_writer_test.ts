/**
 * InfluxWriter against real servers: InfluxDB 1.x (v1 API) and VictoriaMetrics (v2 API).
 */
import assert from "node:assert/strict";
import { startInfluxd, startVictoriaMetrics, waitFor } from "../harness/mod.ts";
import { InfluxWriter } from "../../src/bridges/influx_writer.ts";
import type { InfluxWriterOptions } from "../../src/bridges/influx_options.ts";
import { type Point } from "../../src/bridges/line_protocol.ts";
import { silentLogger } from "../../src/obs/log.ts";
import { createMetrics } from "../../src/obs/metrics.ts";

const BASE_TS = Date.now() - 60_000;

const point = (i: number): Point => ({
  measurement: "telemetry",
  tags: { device: `press-${i % 4}`, site: "s1" },
  fields: { temp: 20 + i / 10, running: i % 2 === 0 },
  ts: BASE_TS + i,
});

function writer(opts: Partial<InfluxWriterOptions> & Pick<InfluxWriterOptions, "url" | "api">) {
  const metrics = createMetrics();
  const w = new InfluxWriter({
    minBackoffMs: 20,
    maxBackoffMs: 200,
    logger: silentLogger,
    metrics,
    ...opts,
  });
  return { writer: w, metrics };
}

// deno-lint-ignore no-explicit-any
function countOf(result: any): number {
  return result?.results?.[0]?.series?.[0]?.values?.[0]?.[1] ?? 0;
}

Deno.test("InfluxWriter v1 creates the database and writes 1000 points to influxd", async () => {
  await using influx = await startInfluxd();
  const { writer: w, metrics } = writer({
    url: influx.url,
    api: "v1",
    db: "itest",
    batchSize: 300,
  });
  await using _writer = w;
  await Promise.all(Array.from({ length: 1000 }, (_, i) => w.write(point(i))));
  const dbs = await influx.query("SHOW DATABASES");
  assert.ok(JSON.stringify(dbs).includes('"itest"'), "database itest was created");
  await waitFor(
    async () => countOf(await influx.query("SELECT count(temp) FROM telemetry", "itest")) === 1000,
    { timeoutMs: 10_000, message: "1000 points queryable in influxd" },
  );
  assert.equal((await metrics.influxWritten.get()).values[0].value, 1000);
  assert.equal(w.buffered, 0);
});

Deno.test("InfluxWriter v1 delivers every point written while influxd was down", async () => {
  await using influx = await startInfluxd();
  const { writer: w, metrics } = writer({
    url: influx.url,
    api: "v1",
    db: "outage",
    batchSize: 100,
    flushIntervalMs: 10,
  });
  await using _writer = w;
  await Promise.all(Array.from({ length: 200 }, (_, i) => w.write(point(i))));

  await influx.stop();
  const during = Array.from({ length: 800 }, (_, i) => w.write(point(200 + i)));
  await waitFor(async () => (await metrics.influxRetries.get()).values[0].value >= 2, {
    timeoutMs: 10_000,
    message: "writer retrying while influxd is down",
  });
  assert.ok(w.buffered > 0);

  await influx.start();
  await Promise.all(during);
  await w.flush();
  const q = "SELECT count(temp) FROM telemetry";
  await waitFor(async () => countOf(await influx.query(q, "outage")) === 1000, {
    timeoutMs: 10_000,
    message: "all 1000 points in influxd after the outage",
  });
  assert.equal(countOf(await influx.query(q, "outage")), 1000);
  assert.equal(w.buffered, 0);
});

Deno.test("InfluxWriter v2 writes series readable from VictoriaMetrics", async () => {
  await using vm = await startVictoriaMetrics();
  const { writer: w } = writer({
    url: vm.url,
    api: "v2",
    org: "acme",
    bucket: "telemetry",
    token: "not-checked-by-vm",
  });
  await using _writer = w;
  const n = 20;
  const written = Array.from({ length: n }, (_, i) => w.write(point(i * 4))); // device press-0
  await w.flush();
  await Promise.all(written);
  const text = await waitFor(async () => {
    await vm.flush();
    const out = (await vm.exportSeries('telemetry_temp{device="press-0"}')).trim();
    return out && JSON.parse(out).values.length === n ? out : "";
  }, { timeoutMs: 15_000, message: "telemetry_temp series in VictoriaMetrics" });
  const series = JSON.parse(text);
  assert.equal(series.metric.__name__, "telemetry_temp");
  assert.equal(series.metric.site, "s1");
  assert.deepEqual(series.timestamps, Array.from({ length: n }, (_, i) => BASE_TS + i * 4));
  assert.deepEqual(series.values, Array.from({ length: n }, (_, i) => 20 + (i * 4) / 10));
});

Deno.test("InfluxWriter escapes names so they round-trip through influxd", async () => {
  await using influx = await startInfluxd();
  const { writer: w } = writer({ url: influx.url, api: "v1", db: "esc" });
  await using _writer = w;
  const device = 'press 7,line=2 "A"';
  const text = 'said "hi", a=b \\o/';
  await w.write({
    measurement: "tele metry,x",
    tags: { "dev ice": device },
    fields: { "te=mp": 1, note: text },
    ts: BASE_TS,
  });
  const res = await influx.query('SELECT * FROM "tele metry,x"', "esc");
  const series = res.results[0].series[0];
  assert.deepEqual(series.columns, ["time", "dev ice", "note", "te=mp"]);
  assert.deepEqual(series.values[0].slice(1), [device, text, 1]);
});
