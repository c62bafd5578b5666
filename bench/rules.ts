/**
 * **rules** — QoS 1 ingest of a node whose twins all use a profile of 10 mixed rules, against
 * the same node software with no profile, same publishers, same run.
 *
 * Each round starts a fresh node, provisions the twins (`type: bench`; with rules, after
 * `PUT /v1/profiles/bench`), then N `mosquitto_pub -q 1 -l` publishers send M lines each;
 * msgs/s from the first publisher's start until every twin reads back at its exact version
 * (all PUBACKs, all applied). Rounds alternate without/with rules; medians are reported.
 * @module
 */
import { type BenchRow, num, verdict } from "./report.ts";
import { cpuMeter, formatCpu, log } from "./proc.ts";
import { metricSum, mqttPort, startBenchNode, waitForVersions } from "./node.ts";
import { type InputKind, median, publishAll, telemetryLine, writeInputs } from "./publishers.ts";

/** Parameters of the rules bench. */
export interface RulesBenchOptions {
  /** Concurrent publishers, one twin each. Default 30. */
  publishers?: number;
  /** Messages per publisher. Default 2000. */
  messages?: number;
  /** Warm-up messages per publisher (to other twins). Default 200. */
  warmup?: number;
  /** `mosquitto_pub -M`. Default 100. */
  maxInflight?: number;
  /** Interleaved rounds of each; medians reported. Default 3. */
  rounds?: number;
}

/** Required ratio of ingest with rules to ingest without. */
const TARGET = 0.85;

/** Ten rules of every kind over the bench's fields (`temp` 20.0–29.9, `rpm`, `ok`). */
export const BENCH_PROFILE = {
  description: "bench: 10 mixed rules",
  rules: [
    {
      id: "hot",
      kind: "threshold",
      field: "temp",
      op: ">",
      value: 29,
      clear: 28,
      severity: "major",
    },
    {
      id: "hot-long",
      kind: "threshold",
      field: "temp",
      op: ">=",
      value: 25,
      clear: 24,
      forSeconds: 30,
      severity: "minor",
    },
    { id: "fast", kind: "threshold", field: "rpm", op: ">", value: 2900, severity: "warning" },
    { id: "temp-band", kind: "deadband", field: "temp", band: 0.15 },
    { id: "per-minute", kind: "window", fields: ["temp", "rpm"], seconds: 60 },
    { id: "rpm-anomaly", kind: "anomaly", field: "rpm", warmup: 20, zLimit: 4, severity: "info" },
    {
      id: "temp-rate",
      kind: "rate",
      field: "temp",
      limit: 50,
      windowSeconds: 10,
      severity: "info",
    },
    { id: "silent", kind: "stale", seconds: 300, severity: "major" },
    { id: "hot-not-ok", kind: "expression", expr: "temp > 29.5 && !ok", severity: "critical" },
    {
      id: "overspeed",
      kind: "expression",
      expr: "rpm / 10 > 290 || temp * 2 > 59.9",
      severity: "info",
    },
  ],
};

interface Setup {
  n: number;
  m: number;
  w: number;
  inflight: number;
  dir: string;
}

interface Run {
  rate: number;
  secs: number;
  cpu: string;
  alarms: number;
  suppressed: number;
}

/** Runs the rules bench. */
export async function benchRules(o: RulesBenchOptions = {}): Promise<BenchRow> {
  const s: Setup = {
    n: o.publishers ?? 30,
    m: o.messages ?? 2000,
    w: o.warmup ?? 200,
    inflight: o.maxInflight ?? 100,
    dir: await Deno.makeTempDir({ prefix: "twinmill-bench-rules-" }),
  };
  const rounds = o.rounds ?? 3;
  try {
    await writeInputs(s.dir, s.n, { warm: s.w, run: s.m }, line);
    const plain: Run[] = [];
    const ruled: Run[] = [];
    for (let r = 1; r <= rounds; r++) {
      log(`rules: round ${r} of ${rounds}`);
      plain.push(await run(s, false));
      ruled.push(await run(s, true));
    }
    const off = median(plain, (r) => r.rate);
    const on = median(ruled, (r) => r.rate);
    const ratio = on.rate / off.rate;
    const all = (runs: Run[]) => runs.map((x) => num(x.rate)).join(", ");
    return {
      bench: "rules",
      result: `${num(on.rate)} msgs/s (10 mixed rules on every twin)`,
      baseline: `${num(off.rate)} msgs/s (same node, no profile)`,
      ratio: `${ratio.toFixed(2)}×`,
      target: verdict(`≥ ${TARGET}×`, ratio >= TARGET),
      notes: [
        `${s.n} twins (\`type: bench\`), ${s.n} × \`mosquitto_pub -q 1 -l -M ${s.inflight}\`, ` +
        `${num(s.m)} messages each after a warm-up of ${s.w} each; ${rounds} interleaved rounds, ` +
        `medians reported (no rules ${all(plain)}; rules ${all(ruled)} msgs/s).`,
        `profile: threshold ×3 (one with forSeconds), deadband, window (1 min), anomaly, rate, ` +
        `stale, expression ×2; in the median round ${num(on.alarms)} alarm changes and ` +
        `${num(on.suppressed)} fields suppressed by the deadband.`,
        `no rules (median round): ${off.secs.toFixed(2)} s; CPU ${off.cpu}.`,
        `rules (median round): ${on.secs.toFixed(2)} s; CPU ${on.cpu}.`,
      ],
    };
  } finally {
    await Deno.remove(s.dir, { recursive: true }).catch(() => {});
  }
}

/** Line `i`: the bench's telemetry with `ok` false every 7th line (for the expressions). */
function line(i: number): string {
  return telemetryLine(i).replace('"ok":true', `"ok":${i % 7 !== 0}`);
}

function publishers(s: Setup, port: number, kind: InputKind): Promise<void> {
  return publishAll({
    dir: s.dir,
    ports: [port],
    n: s.n,
    inflight: s.inflight,
    kind,
    twin: (k) => `${kind}-${k}`,
    clientId: (k) => `bench-rules-${kind}-${k}`,
  });
}

async function put(url: string, body: unknown): Promise<void> {
  const res = await fetch(url, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`PUT ${url}: ${res.status} ${text}`);
}

async function run(s: Setup, rules: boolean): Promise<Run> {
  const what = rules ? "with rules" : "no rules";
  log(`rules: ${what} — starting a fresh twinmill node`);
  const node = await startBenchNode();
  try {
    const port = mqttPort(node);
    if (rules) await put(`${node.httpUrl}/v1/profiles/bench`, BENCH_PROFILE);
    const ids = (kind: string) => Array.from({ length: s.n }, (_, k) => `${kind}-${k}`);
    for (const id of [...ids("warm"), ...ids("run")]) {
      await put(`${node.httpUrl}/v1/twins/${id}`, { attributes: { type: "bench" } });
    }
    log(`rules: ${what} warm-up (${s.n} × ${s.w})`);
    await publishers(s, port, "warm");
    await waitForVersions(node.httpUrl, ids("warm"), s.w + 1);
    log(`rules: ${what} run (${s.n} × ${s.m})`);
    const alarms0 = await metricSum(node.httpUrl, "twinmill_alarm_transitions_total");
    const sup0 = await metricSum(node.httpUrl, "twinmill_telemetry_fields_suppressed_total");
    const cpu = cpuMeter({ node: node.pid }, { "node main thread": node.pid });
    const t0 = performance.now();
    await publishers(s, port, "run");
    await waitForVersions(node.httpUrl, ids("run"), s.m + 1, 120_000);
    const secs = (performance.now() - t0) / 1000;
    const used = formatCpu(cpu.stop());
    const alarms = await metricSum(node.httpUrl, "twinmill_alarm_transitions_total") - alarms0;
    const suppressed = await metricSum(node.httpUrl, "twinmill_telemetry_fields_suppressed_total") -
      sup0;
    if (rules && (alarms === 0 || suppressed === 0)) {
      throw new Error(`Rules did not run: ${alarms} alarm changes, ${suppressed} suppressed`);
    }
    const rate = s.n * s.m / secs;
    log(`rules: ${what} ${num(rate)} msgs/s (${secs.toFixed(2)} s; ${used})`);
    return { rate, secs, cpu: used, alarms, suppressed };
  } finally {
    await node.dispose();
  }
}
