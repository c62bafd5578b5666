/**
 * **influx** — twinmill's InfluxDB writer (`src/bridges/influx_writer.ts`, the class a node
 * writes telemetry with, v1 API) against raw line-protocol writes, both into a real `influxd`
 * 1.x started by the test harness.
 *
 * Writer: `write(point)` for each of N points (holding back while `full`, as ingest does),
 * until every point's promise has resolved (InfluxDB accepted it). Baseline: the same points
 * as line protocol built with a template string, POSTed to `/write?db=…&precision=ns` with
 * `fetch` in batches of the writer's size, one request at a time (as the writer sends).
 * Each run writes to a fresh database; the count is checked afterwards. Interleaved rounds,
 * medians.
 * @module
 */
import { startInfluxd } from "../tests/harness/mod.ts";
import { InfluxWriter } from "../src/bridges/influx_writer.ts";
import { type Point, toLineProtocol } from "../src/bridges/line_protocol.ts";
import { silentLogger } from "../src/obs/log.ts";
import { createMetrics } from "../src/obs/metrics.ts";
import { type BenchRow, num, verdict } from "./report.ts";
import { childPids, cpuMeter, formatCpu, log, trackDisposable } from "./proc.ts";
import { median } from "./publishers.ts";

/** Parameters of the influx bench. */
export interface InfluxBenchOptions {
  /** Points per run. Default 200,000. */
  points?: number;
  /** Points per request, both sides (the writer's default). Default 5,000. */
  batchSize?: number;
  /** Distinct series (`device` tag values). Default 1,000. */
  series?: number;
  /** Interleaved rounds; medians reported. Default 3. */
  rounds?: number;
}

/** Required ratio of the writer's points/s to raw writes. */
const TARGET = 0.5;

interface Run {
  rate: number;
  secs: number;
  cpu: string;
}

/** Runs the influx bench. */
export async function benchInflux(o: InfluxBenchOptions = {}): Promise<BenchRow> {
  const n = o.points ?? 200_000;
  const batch = o.batchSize ?? 5000;
  const series = o.series ?? 1000;
  const rounds = o.rounds ?? 3;
  log("influx: starting influxd");
  const influx = trackDisposable("influxd", await startInfluxd());
  try {
    const pid = childPids("influxd").at(-1);
    const pids: Record<string, number> = pid ? { influxd: pid } : {};
    const t = Date.now() - 3_600_000; // an hour ago, 1 ms apart per series
    const point = (i: number): Point => ({
      measurement: "telemetry",
      tags: { device: `dev-${i % series}`, site: "plant-1" },
      fields: { temp: 20 + (i % 100) / 10, rpm: 1000 + (i % 2000), ok: i % 7 !== 0 },
      ts: t + Math.floor(i / series),
    });
    const raws: Run[] = [];
    const writers: Run[] = [];
    for (let r = 1; r <= rounds; r++) {
      log(
        `influx: raw line protocol, round ${r}/${rounds} (${num(n)} points, batches of ${batch})`,
      );
      raws.push(
        await measure(
          influx.url,
          `raw_${r}`,
          n,
          pids,
          () => raw(influx.url, `raw_${r}`, n, batch, t, series),
        ),
      );
      log(`influx: raw ${num(raws.at(-1)!.rate)} points/s (${raws.at(-1)!.cpu})`);
      log(`influx: InfluxWriter, round ${r}/${rounds}`);
      writers.push(
        await measure(influx.url, `writer_${r}`, n, pids, (w) => viaWriter(w!, n, point), batch),
      );
      log(`influx: writer ${num(writers.at(-1)!.rate)} points/s (${writers.at(-1)!.cpu})`);
    }
    // Where the writer's time goes: the line encoding alone, in this process.
    const t0 = performance.now();
    let bytes = 0;
    for (let i = 0; i < n; i++) bytes += toLineProtocol(point(i)).length;
    const encodeUs = (performance.now() - t0) * 1000 / n;
    const b = median(raws, (x) => x.rate);
    const w = median(writers, (x) => x.rate);
    const ratio = w.rate / b.rate;
    const all = (runs: Run[]) => runs.map((x) => num(x.rate)).join(", ");
    return {
      bench: "influx",
      result: `${num(w.rate)} points/s (InfluxWriter, v1 API)`,
      baseline: `${num(b.rate)} points/s (raw line protocol, fetch POST /write)`,
      ratio: `${ratio.toFixed(2)}×`,
      target: verdict(`≥ ${TARGET}×`, ratio >= TARGET),
      notes: [
        `${num(n)} points (measurement \`telemetry\`, tags \`device\` × ${num(series)} and ` +
        `\`site\`, fields temp, rpm, ok; ns timestamps, as the node writes) into a fresh database per run of ` +
        `\`influxd\` 1.x, ${num(batch)} points per request, one request at a time; ` +
        `${rounds} interleaved rounds, medians reported (raw ${all(raws)}; writer ${
          all(writers)
        } points/s); every run's count checked with \`SELECT count(temp)\`.`,
        `writer: \`InfluxWriter.write(point)\` per point (line encoding with escaping, a promise ` +
        `per point resolved when InfluxDB accepted its batch), ${
          w.secs.toFixed(2)
        } s; CPU ${w.cpu}. ` +
        `\`toLineProtocol\` alone takes ${encodeUs.toFixed(1)} µs per point here ` +
        `(${num(bytes / n)} bytes per line); the raw side's template string almost nothing.`,
        `raw: the same points as template strings joined per batch, \`fetch\` POST ` +
        `\`/write?db=…&precision=ns\`, ${b.secs.toFixed(2)} s; CPU ${b.cpu}.`,
      ],
    };
  } finally {
    await influx.dispose();
  }
}

/**
 * Creates `db` (for the writer: a writer that has created it and written one point to
 * another measurement), then times `run`; checks that `db` holds `n` telemetry points.
 */
async function measure(
  url: string,
  db: string,
  n: number,
  pids: Record<string, number>,
  run: (w?: InfluxWriter) => Promise<void>,
  writerBatch?: number,
): Promise<Run> {
  let writer: InfluxWriter | undefined;
  if (writerBatch !== undefined) {
    writer = new InfluxWriter({
      url,
      api: "v1",
      db,
      batchSize: writerBatch,
      logger: silentLogger,
      metrics: createMetrics(),
    });
    // The writer creates the database first; one point makes sure that is done.
    await writer.write({ measurement: "warm", tags: {}, fields: { x: 1 }, ts: Date.now() });
  } else {
    await post(`${url}/query?${new URLSearchParams({ q: `CREATE DATABASE "${db}"` })}`, "");
    await post(`${url}/write?${new URLSearchParams({ db, precision: "ms" })}`, `warm x=1`);
  }
  try {
    const cpu = cpuMeter(pids, { "bench main thread": Deno.pid });
    const t0 = performance.now();
    await run(writer);
    const secs = (performance.now() - t0) / 1000;
    const used = formatCpu(cpu.stop());
    const q = new URLSearchParams({ q: "SELECT count(temp) FROM telemetry", db });
    const res = await fetch(`${url}/query?${q}`, { method: "POST" });
    const body = await res.json();
    const count = body?.results?.[0]?.series?.[0]?.values?.[0]?.[1] ?? 0;
    if (count !== n) throw new Error(`${db}: ${count} points stored, expected ${n}`);
    return { rate: n / secs, secs, cpu: used };
  } finally {
    await writer?.close();
  }
}

/** All `n` points through the writer; resolves when every one is accepted. */
async function viaWriter(w: InfluxWriter, n: number, point: (i: number) => Point) {
  const pending: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    if (w.full) await w.whenSpace();
    pending.push(w.write(point(i)));
  }
  await Promise.all(pending);
}

/** The same points as hand-built line protocol, `batch` per POST, one POST at a time. */
async function raw(url: string, db: string, n: number, batch: number, t: number, series: number) {
  // nanoseconds, as the node writes them (one point per message: see toLineProtocol)
  const write = `${url}/write?${new URLSearchParams({ db, precision: "ns" })}`;
  for (let start = 0; start < n; start += batch) {
    const lines: string[] = [];
    for (let i = start; i < Math.min(n, start + batch); i++) {
      lines.push(
        `telemetry,device=dev-${i % series},site=plant-1 temp=${20 + (i % 100) / 10},rpm=${
          1000 + (i % 2000)
        },ok=${i % 7 !== 0} ${t + Math.floor(i / series)}000000`,
      );
    }
    await post(write, lines.join("\n"));
  }
}

async function post(url: string, body: string): Promise<void> {
  const res = await fetch(url, { method: "POST", body });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${url} -> ${res.status}: ${text}`);
}
