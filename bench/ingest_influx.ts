/**
 * **ingest-influx** — the `ingest` bench's `-M 100` shape (30 × `mosquitto_pub -q 1 -l -M 100`
 * × 2,000) against a node that writes its telemetry to a real VictoriaMetrics through the
 * InfluxDB v2 API (`INFLUX_API=v2`), baseline mosquitto ack-only with the same publishers in the
 * same run (see `ingest.ts`). Target ≥ 0.9× (issue 16).
 *
 * A fresh VictoriaMetrics for each node run. The node's time ends when every PUBACK is in,
 * every twin is at its version and every message's point is in VictoriaMetrics: after
 * `/internal/force_flush`, `count_over_time(telemetry_temp{device=~"dev-…"}[3h])` evaluated an hour ahead (v2 line
 * protocol `telemetry` with field `temp` is metric `telemetry_temp`) counts exactly the
 * messages sent to each twin; more fails the row at once, fewer when the deadline passes (a
 * point that storage merged away is lost data). After the timing, `/api/v1/export` of
 * `telemetry_rpm` must give each message's `rpm` (distinct per message) exactly once.
 * @module
 */
import { startVictoriaMetrics, type VictoriaMetricsServer } from "../tests/harness/mod.ts";
import { benchIngest, type IngestOptions, SHAPES } from "./ingest.ts";
import type { IngestStore } from "./ingest_store.ts";
import { metric, metricSum } from "./node.ts";
import { childPids, sleep } from "./proc.ts";
import { telemetryLine } from "./publishers.ts";
import type { BenchRow } from "./report.ts";

/** Required ratio of node (with InfluxDB writing) to mosquitto ack-only (issue 16). */
const TARGET = 0.9;
/** How long the points may take to be counted after every twin was at its version. */
const STORE_TIMEOUT_MS = 60_000;

/** Runs the ingest-influx bench: one row. */
export function benchIngestInflux(
  o: Omit<IngestOptions, "shapes" | "target" | "store"> = {},
): Promise<BenchRow[]> {
  return benchIngest({
    ...o,
    shapes: [{ ...SHAPES[0], name: "ingest-influx" }],
    target: TARGET,
    store: {
      name: "VictoriaMetrics",
      start: startStore,
      notes: [
        "store: a fresh `victoria-metrics` per node round, written by the node through the " +
        "InfluxDB v2 API (`INFLUX_API=v2`, org/bucket/token set); the node's time ends when " +
        "every PUBACK is in, every twin is at its version and, after `/internal/force_flush`, " +
        "`count_over_time(telemetry_temp{device=~…}[3h])`, evaluated an hour ahead (by default " +
        "VictoriaMetrics evaluates a second in the past), counts exactly each twin's messages " +
        "(polled; more or fewer fails the row); afterwards `/api/v1/export` of `telemetry_rpm` " +
        "has every message's `rpm` exactly once. VictoriaMetrics' CPU is listed with the node's.",
      ],
    },
  });
}

async function startStore(): Promise<IngestStore> {
  const vm = await startVictoriaMetrics();
  // the kernel's command name is 15 characters long at most
  const pid = childPids("victoria-metrics".slice(0, 15)).at(-1);
  let written = 0; // points the node has written so far, warm-up included
  return {
    env: {
      INFLUX_URL: vm.url,
      INFLUX_API: "v2",
      INFLUX_ORG: "bench",
      INFLUX_BUCKET: "bench",
      INFLUX_TOKEN: "bench",
    },
    pids: pid ? { "victoria-metrics": pid } : {},
    async waitStored(httpUrl, ids, perTwin, t0) {
      written += ids.length * perTwin;
      const deadline = Date.now() + STORE_TIMEOUT_MS;
      while (await metric(httpUrl, "twinmill_influx_points_written_total") < written) {
        const failed = await metricSum(httpUrl, "twinmill_influx_points_failed_total");
        if (failed > 0) throw new Error(`The node's writer had ${failed} points refused`);
        if (Date.now() > deadline) throw new Error("The node's writer did not write every point");
        await sleep(5);
      }
      const writtenSecs = (performance.now() - t0) / 1000;
      let polls = 0;
      for (let stored = -1; stored !== ids.length * perTwin; polls++) {
        if (Date.now() > deadline) {
          throw new Error(
            `VictoriaMetrics holds ${stored} points, expected ${ids.length * perTwin}`,
          );
        }
        if (stored >= 0) await sleep(5);
        stored = await count(vm, ids, perTwin);
      }
      return `The node's writer had its last point accepted after ${writtenSecs.toFixed(2)} s; ` +
        `VictoriaMetrics counted them all after ${polls} flush + count polls.`;
    },
    check: (ids, perTwin) => checkExport(vm, ids, perTwin),
    [Symbol.asyncDispose]: () => vm[Symbol.asyncDispose](),
  };
}

/** `{device=~"a|b|…"}` (anchored, as PromQL regexes are) for twins `ids`: plain names. */
function selector(ids: string[]): string {
  return `{device=~"${ids.join("|")}"}`;
}

/**
 * `GET <path>?<params>` on `vm`, also `time`/`end` an hour ahead: VictoriaMetrics evaluates
 * queries about a second in the past by default, which would hide the last second's points.
 */
async function get(vm: VictoriaMetricsServer, path: string, params: Record<string, string>) {
  const ahead = String(Date.now() / 1000 + 3600);
  const q = new URLSearchParams({ ...params, time: ahead, end: ahead });
  const res = await fetch(`${vm.url}${path}?${q}`);
  const text = await res.text();
  if (!res.ok) throw new Error(`GET ${path} -> ${res.status}: ${text}`);
  return text;
}

/**
 * Flushes, then counts the `telemetry_temp` samples of `ids` of the last hours; throws if a
 * twin has more than `perTwin` (a point written twice).
 */
async function count(vm: VictoriaMetricsServer, ids: string[], perTwin: number) {
  await vm.flush();
  const query = `count_over_time(telemetry_temp${selector(ids)}[3h])`;
  const body = JSON.parse(await get(vm, "/api/v1/query", { query }));
  const series: { metric: { device: string }; value: [number, string] }[] = body.data.result;
  let sum = 0;
  for (const s of series) {
    const n = Number(s.value[1]);
    if (n > perTwin) throw new Error(`${s.metric.device}: ${n} points, expected ${perTwin}`);
    sum += n;
  }
  return sum;
}

/** Throws unless each twin's exported `telemetry_rpm` values are those of its input, once. */
async function checkExport(vm: VictoriaMetricsServer, ids: string[], perTwin: number) {
  const want = Array.from({ length: perTwin }, (_, i) => JSON.parse(telemetryLine(i)).rpm)
    .sort((a, b) => a - b).join(",");
  const text = (await get(vm, "/api/v1/export", { "match[]": `telemetry_rpm${selector(ids)}` }))
    .trim();
  const series = text ? text.split("\n").map((l) => JSON.parse(l)) : [];
  const got = new Map<string, number[]>();
  for (const s of series) {
    got.set(s.metric.device, [...got.get(s.metric.device) ?? [], ...s.values]);
  }
  for (const id of ids) {
    const values = (got.get(id) ?? []).sort((a, b) => a - b);
    if (values.join(",") !== want) {
      throw new Error(
        `${id}: VictoriaMetrics holds ${values.length} rpm values, not each of the ` +
          `${perTwin} messages' once`,
      );
    }
  }
}
