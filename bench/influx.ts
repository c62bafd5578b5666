/**
 * **influx** — twinmill's InfluxDB writer (`src/bridges/influx_writer.ts`, the class a node
 * writes telemetry with, v1 API) against raw line-protocol writes, both into a real `influxd`
 * 1.x started by the test harness.
 *
 * Writer: `write(point)` for each of N points (holding back while `full`, as ingest does),
 * until every point's promise has resolved (InfluxDB accepted it), waiting once per distinct
 * promise as the node's effect executor does. Baseline: the same points as line protocol built
 * with a template string, POSTed to `/write?db=…&precision=ns` with `fetch` in batches of the
 * writer's size, with 1, 2 and 4 requests in flight; the fastest (by median) is the baseline,
 * so it is the raw writer in its best configuration on this machine. Each run writes to a
 * fresh database; the count is checked afterwards. Interleaved rounds, medians.
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
const TARGET = 0.9;
/** Requests in flight tried for the raw baseline. */
const IN_FLIGHT = [1, 2, 4];

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
    const raws = new Map<number, Run[]>(IN_FLIGHT.map((k) => [k, []]));
    const writers: Run[] = [];
    for (let r = 1; r <= rounds; r++) {
      for (const k of IN_FLIGHT) {
        log(
          `influx: raw line protocol, ${k} in flight, round ${r}/${rounds} (${num(n)} points, ` +
            `batches of ${batch})`,
        );
        const db = `raw_${k}_${r}`;
        const run = await measure(
          influx.url,
          db,
          n,
          pids,
          () => raw(influx.url, db, n, batch, t, series, k),
        );
        raws.get(k)!.push(run);
        log(`influx: raw ${num(run.rate)} points/s (${run.cpu})`);
      }
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
    const byK = IN_FLIGHT.map((k) => ({ k, m: median(raws.get(k)!, (x) => x.rate) }));
    const best = byK.reduce((a, x) => x.m.rate > a.m.rate ? x : a);
    const b = best.m;
    const w = median(writers, (x) => x.rate);
    const ratio = w.rate / b.rate;
    const all = (runs: Run[]) => runs.map((x) => num(x.rate)).join(", ");
    const rawAll = byK.map(({ k }) => `${k} in flight ${all(raws.get(k)!)}`).join("; ");
    return {
      bench: "influx",
      result: `${num(w.rate)} points/s (InfluxWriter, v1 API)`,
      baseline: `${
        num(b.rate)
      } points/s (raw line protocol, fetch POST /write, ${best.k} in flight)`,
      ratio: `${ratio.toFixed(2)}×`,
      target: verdict(`≥ ${TARGET}×`, ratio >= TARGET),
      notes: [
        `${num(n)} points (measurement \`telemetry\`, tags \`device\` × ${num(series)} and ` +
        `\`site\`, fields temp, rpm, ok; ns timestamps, as the node writes) into a fresh database per run of ` +
        `\`influxd\` 1.x, ${num(batch)} points per request; ` +
        `${rounds} interleaved rounds, medians reported (raw ${rawAll}; writer ${
          all(writers)
        } points/s); every run's count checked with \`SELECT count(temp)\`.`,
        `writer: \`InfluxWriter.write(point)\` per point (line encoding with escaping into its ` +
        `batch's buffer, one promise per batch resolved when InfluxDB accepted it; a backlog ` +
        `spread by series over its default 4 lanes, one request in flight per lane), ` +
        `${w.secs.toFixed(2)} s; CPU ${w.cpu}. ` +
        `\`toLineProtocol\` alone takes ${encodeUs.toFixed(1)} µs per point here ` +
        `(${num(bytes / n)} bytes per line); the raw side's template string almost nothing.`,
        `raw: the same points as template strings joined per batch, \`fetch\` POST ` +
        `\`/write?db=…&precision=ns\`, ${best.k} in flight (the fastest median of ${
          IN_FLIGHT.join(", ")
        }), ${b.secs.toFixed(2)} s; CPU ${b.cpu}.`,
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

/**
 * All `n` points through the writer; resolves when every one is accepted. Points in a row
 * that got the same promise (a batch) are waited on once, as the node's effect executor does.
 */
async function viaWriter(w: InfluxWriter, n: number, point: (i: number) => Point) {
  const pending: Promise<void>[] = [];
  let last: Promise<void> | undefined;
  for (let i = 0; i < n; i++) {
    if (w.full) await w.whenSpace();
    const p = w.write(point(i));
    if (p !== last) pending.push(last = p);
  }
  await Promise.all(pending);
}

/** The same points as hand-built line protocol, `batch` per POST, `inFlight` POSTs at a time. */
async function raw(
  url: string,
  db: string,
  n: number,
  batch: number,
  t: number,
  series: number,
  inFlight: number,
) {
  // nanoseconds, as the node writes them (one point per message: see toLineProtocol)
  const write = `${url}/write?${new URLSearchParams({ db, precision: "ns" })}`;
  let next = 0;
  const sender = async () => {
    while (next < n) {
      const start = next;
      next += batch;
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
  };
  await Promise.all(Array.from({ length: inFlight }, sender));
}

async function post(url: string, body: string): Promise<void> {
  const res = await fetch(url, { method: "POST", body });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${url} -> ${res.status}: ${text}`);
}
