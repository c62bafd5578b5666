/**
 * **factory** — 15,000 devices connected at once over real TCP, each publishing QoS 1 once a
 * second for 60 s: PUBACK latency, memory and CPU of a node against mosquitto under the same
 * load in the same run (issue 16).
 *
 * The load comes from `bench/factory_gen.c` processes, compiled here with `cc` (raw MQTT
 * 3.1.1 packets on non-blocking sockets and epoll, at most 7,500 connections each): they
 * connect their devices at a bounded rate (500/s in all), report ready, and start publishing
 * together at a time the bench gives them; device g of N publishes at g/N s into each second. Each side (mosquitto first, then a
 * fresh node; one round each) gets the same generators. Per side: RSS (`VmRSS`) when idle,
 * once all are connected, sampled every second (peak) and `VmHWM`; CPU of the server (and
 * the node's main thread), of the generators and of the machine over the publishing phase;
 * PUBACK latency p50/p90/p99/max from the generators' histograms.
 *
 * The node must acknowledge every message (the generators' counts and
 * `twinmill_mqtt_messages_acked_total`) and apply it: afterwards every twin `fac-k` must read
 * back at a version between the messages acknowledged and sent to it (equal when all were
 * acknowledged); a twin outside that is a failure of the bench.
 * @module
 */
import { type BenchRow, loadAverage, num, verdict } from "./report.ts";
import { cpuMeter, log, memMiB, sleep } from "./proc.ts";
import { startBaselineMosquitto } from "./mosquitto.ts";
import { metric, mqttPort, startBenchNode, twinVersion } from "./node.ts";
import { Histogram } from "./histogram.ts";
import {
  compileGenerator,
  type Generator,
  type GeneratorResult,
  type Ready,
  startGenerator,
} from "./factory_gen.ts";

/** Parameters of the factory bench. */
export interface FactoryOptions {
  /** Devices connected at once. Default 15,000. */
  devices?: number;
  /** Messages per device, one a second. Default 60. */
  seconds?: number;
  /** Most devices per generator process. Default 7,500. */
  perProcess?: number;
  /** New connections per second, all generators together. Default 500. */
  connectRate?: number;
}

/** How long the generators wait for the last PUBACKs, ms. */
const DRAIN_MS = 10_000;

/** Issue 16: PUBACK p99 at most this, ms… */
const TARGET_P99_MS = 50;
/** …and at most this many times mosquitto's p99 … */
const TARGET_RATIO = 2.5;
/** …with the node's RSS growing by at most this much per connected device at its peak, KiB. */
const TARGET_KB = 20;

/** One side's run. */
export interface SideRun {
  connected: number;
  connectFailures: number;
  connectSecs: number;
  dropped: number;
  unexpected: number;
  sent: number;
  acked: number;
  sentPer: number[];
  ackedPer: number[];
  latency: Histogram;
  late: Histogram;
  /** MiB: idle before connecting, once connected, sampled peak, VmHWM at the end. */
  idle: number;
  connectedMiB: number;
  peak: number;
  hwm: number;
  /** Cores busy over the publishing phase. */
  cpu: { server: number; main?: number; generators: number; machine: number };
  load: string;
  /** Seconds the CPU was measured over (publishing, from 1 s before the start). */
  wall: number;
  /** Node only: `twinmill_mqtt_messages_acked_total` at the end. */
  nodeAcked?: number;
}

/** Parameters resolved. */
export type Load = Required<FactoryOptions>;

/** Runs the factory bench: mosquitto, then a node. */
export async function benchFactory(o: FactoryOptions = {}): Promise<BenchRow> {
  const load: Load = {
    devices: o.devices ?? 15_000,
    seconds: o.seconds ?? 60,
    perProcess: o.perProcess ?? 7_500,
    connectRate: o.connectRate ?? 500,
  };
  const base = await runMosquitto(load);
  const node = await runNode(load);
  return row(load, node, base);
}

/** The load against a fresh mosquitto (`max_connections -1`, no persistence). */
export async function runMosquitto(load: Load): Promise<SideRun> {
  const dir = await Deno.makeTempDir({ prefix: "bench-factory-" });
  log(`factory: mosquitto, ${num(load.devices)} devices × ${load.seconds} s`);
  const m = await startBaselineMosquitto(dir);
  try {
    return await drive(load, m.port, m.pid, "mosquitto");
  } finally {
    await m.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * The load against a fresh node (`TWINMILL_MAX_CONNECTIONS` above the device count;
 * `BENCH_NODE_V8_FLAGS` passes V8 flags, e.g. `--prof`), then its checks: acknowledged
 * count and every twin's version.
 */
export async function runNode(load: Load): Promise<SideRun> {
  log(`factory: node, ${num(load.devices)} devices × ${load.seconds} s`);
  const v8 = Deno.env.get("BENCH_NODE_V8_FLAGS");
  const node = await startBenchNode({
    TWINMILL_MAX_CONNECTIONS: String(load.devices + 1000),
    ...(v8 ? { DENO_V8_FLAGS: v8 } : {}),
  });
  try {
    const run = await drive(load, mqttPort(node), node.pid, "node");
    const acked = await metric(node.httpUrl, "twinmill_mqtt_messages_acked_total");
    const problems: string[] = [];
    // the node may have acknowledged more than reached the generators before they stopped
    if (acked < run.acked || acked > run.sent) {
      problems.push(
        `node counted ${acked} acknowledged; generators sent ${run.sent}, got ` +
          `${run.acked} PUBACKs`,
      );
    }
    problems.push(...await checkVersions(node.httpUrl, run));
    if (problems.length > 0) {
      throw new Error(`factory: node counts or versions wrong: ${problems.join("; ")}`);
    }
    log(`factory: node acknowledged ${num(acked)}; every twin at its version`);
    return { ...run, nodeAcked: acked };
  } finally {
    await node.dispose();
  }
}

/** Twins `fac-k` outside [acked, sent] once applying has settled (60 s at most). */
async function checkVersions(httpUrl: string, run: SideRun): Promise<string[]> {
  const bad: string[] = [];
  let next = 0;
  const deadline = Date.now() + 60_000;
  const worker = async () => {
    for (let k = next++; k < run.sentPer.length; k = next++) {
      const lo = run.ackedPer[k];
      const hi = run.sentPer[k];
      for (;;) {
        const v = await twinVersion(httpUrl, `fac-${k}`);
        if (v > hi) bad.push(`fac-${k} at version ${v}, sent ${hi}`);
        if (v > hi || v >= lo) break;
        if (Date.now() > deadline) {
          bad.push(`fac-${k} at version ${v}, ${lo} acknowledged`);
          break;
        }
        await sleep(50);
      }
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  return bad.length > 5 ? [...bad.slice(0, 5), `${bad.length - 5} more twins`] : bad;
}

/**
 * Runs the generators against `port`; measures the server `pid` meanwhile (also usable on a
 * server started by hand, e.g. a node under `deno run --cpu-prof`). Label `node` also
 * measures the main thread.
 */
export async function drive(
  load: Load,
  port: number,
  pid: number,
  label: string,
): Promise<SideRun> {
  const dir = await Deno.makeTempDir({ prefix: "bench-factory-gen-" });
  const bin = await compileGenerator(dir);
  const loadBefore = loadAverage();
  const idle = memMiB(pid);
  let peak = idle;
  const sampler = setInterval(() => {
    try {
      peak = Math.max(peak, memMiB(pid));
    } catch {
      // exited: the run fails below
    }
  }, 1000);
  const procs = Math.ceil(load.devices / load.perProcess);
  const gens: Generator[] = [];
  try {
    for (let i = 0; i < procs; i++) {
      const first = Math.round(i * load.devices / procs);
      const count = Math.round((i + 1) * load.devices / procs) - first;
      gens.push(startGenerator(bin, {
        host: "127.0.0.1",
        port,
        first,
        count,
        total: load.devices,
        seconds: load.seconds,
        connectRate: load.connectRate / procs,
        drainMs: DRAIN_MS,
      }, `${label} generator ${i + 1}`));
    }
    const ready = await Promise.all(gens.map(async (g) => JSON.parse(await g.next()) as Ready));
    const connected = ready.reduce((a, r) => a + r.connected, 0);
    const connectedMiB = memMiB(pid);
    log(`factory: ${label}: ${num(connected)} connected; RSS ${num(connectedMiB, 1)} MiB`);
    const metered = performance.now();
    const meter = cpuMeter(
      Object.fromEntries([["server", pid], ...gens.map((g, i) => [`g${i}`, g.p.pid])]),
      label === "node" ? { main: pid } : {},
    );
    const startAt = new TextEncoder().encode(`${Date.now() + 1000}\n`);
    const stdins = gens.map((g) => g.p.child.stdin.getWriter());
    await Promise.all(stdins.map((w) => w.write(startAt)));
    const results = await Promise.all(
      gens.map(async (g) => JSON.parse(await g.next()) as GeneratorResult),
    );
    const c = meter.stop();
    const wall = (performance.now() - metered) / 1000;
    await Promise.all(stdins.map((w) => w.close())); // the generators disconnect and exit
    clearInterval(sampler);
    peak = Math.max(peak, memMiB(pid));
    const hwm = memMiB(pid, "VmHWM");
    for (const g of gens) {
      const { code } = await g.p.status;
      if (code !== 0) throw new Error(`factory generator exited ${code}: ${g.errors.join("\n")}`);
    }
    const latency = new Histogram();
    const late = new Histogram();
    for (const r of results) {
      latency.merge(r.latency);
      late.merge(r.late);
    }
    const sum = (f: (r: GeneratorResult) => number) => results.reduce((a, r) => a + f(r), 0);
    const run: SideRun = {
      connected,
      connectFailures: sum((r) => r.connectFailures),
      connectSecs: Math.max(...ready.map((r) => r.connectSecs)),
      dropped: sum((r) => r.dropped),
      unexpected: sum((r) => r.unexpected),
      sent: sum((r) => r.sent),
      acked: sum((r) => r.acked),
      sentPer: results.flatMap((r) => r.sentPer),
      ackedPer: results.flatMap((r) => r.ackedPer),
      latency,
      late,
      idle,
      connectedMiB,
      peak,
      hwm,
      cpu: {
        server: c.server,
        main: c.main,
        generators: gens.reduce((a, _, i) => a + c[`g${i}`], 0),
        machine: c.machine,
      },
      load: `${loadBefore} → ${loadAverage()}`,
      wall,
    };
    log(`factory: ${label}: ${summary(run)}`);
    return run;
  } finally {
    clearInterval(sampler);
    await Promise.all(gens.map((g) => g.p.kill()));
    await Deno.remove(dir, { recursive: true });
  }
}

/** KiB of RSS growth per connected device: at the sampled peak and at VmHWM. */
function perDevice(r: SideRun): { sampled: number; hwm: number } {
  const per = (mib: number) => (mib - r.idle) * 1024 / Math.max(1, r.connected);
  return { sampled: per(r.peak), hwm: per(r.hwm) };
}

const ms = (v: number) =>
  Number.isFinite(v)
    ? `${v < 10 ? v.toFixed(2) : v.toFixed(1)} ms`
    : `> ${num(DRAIN_MS)} ms (not acknowledged)`;

/**
 * The `q` latency quantile over every message sent: one never acknowledged counts as slower
 * than any (Infinity when the quantile falls among them).
 */
function pct(r: SideRun, q: number): number {
  const rank = Math.max(1, Math.ceil(q * r.sent));
  return rank > r.acked ? Infinity : r.latency.quantile(rank / r.acked);
}

/** Latency, counts, memory, CPU of one side, for the log and the notes. */
function summary(r: SideRun): string {
  const h = r.latency;
  const kb = perDevice(r);
  const perMsg = r.cpu.server * r.wall * 1e6 / Math.max(1, r.acked);
  const cpu = `${r.cpu.server.toFixed(2)} cores` +
    (r.cpu.main === undefined ? "" : ` (main thread ${r.cpu.main.toFixed(2)})`) +
    ` = ${num(perMsg)} µs per acknowledged message`;
  return `PUBACK p50 ${ms(pct(r, 0.5))}, p90 ${ms(pct(r, 0.9))}, ` +
    `p99 ${ms(pct(r, 0.99))}, max ${ms(r.acked < r.sent ? Infinity : h.max)}; ${num(r.acked)} ` +
    `of ${num(r.sent)} acked` +
    (r.acked < r.sent && r.acked > 0
      ? ` (those: p50 ${ms(h.quantile(0.5))}, p99 ${ms(h.quantile(0.99))}, max ${ms(h.max)})`
      : "") +
    `; ${num(r.connected)} connected in ${r.connectSecs.toFixed(1)} s ` +
    `(${r.connectFailures} failed attempts), ${r.dropped} dropped, ${r.unexpected} unexpected ` +
    `packets; RSS idle ${num(r.idle, 1)} MiB, connected ${num(r.connectedMiB, 1)}, peak ` +
    `${num(r.peak, 1)} (sampled 1/s), VmHWM ${num(r.hwm, 1)}: +${num(kb.sampled, 1)} KB/device ` +
    `at the sampled peak, +${num(kb.hwm, 1)} at VmHWM; CPU ${cpu}, generators ` +
    `${r.cpu.generators.toFixed(2)}, machine ${r.cpu.machine.toFixed(2)}/` +
    `${navigator.hardwareConcurrency}; generator send lag p99 ${ms(r.late.quantile(0.99))}, ` +
    `max ${ms(r.late.max)}; load ${r.load}`;
}

/** Whether every device connected and every message was acknowledged. */
function complete(r: SideRun, devices: number): boolean {
  return r.connected === devices && r.dropped === 0 && r.acked === r.sent && r.unexpected === 0;
}

function row(load: Load, node: SideRun, base: SideRun): BenchRow {
  const np99 = pct(node, 0.99);
  const bp99 = pct(base, 0.99);
  // with messages unacknowledged, a bound: past the drain, or against mosquitto's own bound
  const bound = !Number.isFinite(np99) || !Number.isFinite(bp99);
  const ratio = Math.min(np99, DRAIN_MS) / Math.min(bp99, DRAIN_MS);
  const kb = Math.max(perDevice(node).sampled, perDevice(node).hwm);
  const met = np99 <= TARGET_P99_MS && ratio <= TARGET_RATIO && kb <= TARGET_KB &&
    complete(node, load.devices) && node.sent === load.devices * load.seconds;
  return {
    bench: "factory",
    result: `PUBACK p99 ${ms(np99)}, p50 ${ms(pct(node, 0.5))}; ` +
      `+${num(kb, 1)} KB RSS/device (${num(load.devices)} devices, 1 msg/s each)`,
    baseline: `p99 ${ms(bp99)}, p50 ${ms(pct(base, 0.5))}; ` +
      `+${num(Math.max(perDevice(base).sampled, perDevice(base).hwm), 1)} KB/device (mosquitto)`,
    ratio: `${ratio.toFixed(2)}×${bound ? " (bound: unacknowledged messages)" : ""}`,
    target: verdict(
      `p99 ≤ ${TARGET_P99_MS} ms and ≤ ${TARGET_RATIO}× mosquitto; ≤ ${TARGET_KB} KB/device; ` +
        "all acked and applied",
      met,
    ),
    notes: [
      `${num(load.devices)} devices (${Math.ceil(load.devices / load.perProcess)} generator ` +
      `processes of \`factory_gen.c\`, raw MQTT 3.1.1 on epoll, connecting at ${load.connectRate}/s), each ` +
      `publishing \`{"temp":…}\` at QoS 1 to \`twins/fac-k/telemetry\` once a second for ` +
      `${load.seconds} s, evenly staggered over the second; latency from just before each ` +
      `PUBLISH write to its PUBACK, histogram with 1% buckets; one round per side, mosquitto ` +
      `first; RSS growth per device against the idle server (the larger of the 1/s sampled ` +
      `peak and VmHWM).`,
      `node: ${summary(node)}; every twin fac-k at the version of its messages, ` +
      `\`twinmill_mqtt_messages_acked_total\` = ${num(node.nodeAcked ?? 0)}.`,
      `mosquitto (\`max_connections -1\`, no persistence): ${summary(base)}.`,
    ],
  };
}
