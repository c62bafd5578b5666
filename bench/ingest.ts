/**
 * **ingest** — QoS 1 ingest throughput of a node against mosquitto in its best
 * configuration, same publishers, in two client shapes (one row each): `ingest`, 30 ×
 * `mosquitto_pub -q 1 -l -M 100` × 2,000 messages, and `ingest-default`, 20 ×
 * `mosquitto_pub -q 1 -l` (default in-flight window, 20) × 1,000 messages.
 *
 * Baseline: mosquitto (no persistence) acknowledging with no subscriber — msgs/s from the
 * first publisher's start until every publisher has exited (`mosquitto_pub` exits after its
 * last PUBACK). Beside it, in the notes, the pub→sub rate on the same broker: one
 * `mosquitto_sub -q 1 -t 'twins/#'`, until it has received all N×M.
 *
 * Node: the same publishers against a fresh node's MQTT port; msgs/s from the first
 * publisher's start until every publisher has exited (all PUBACKs, i.e. all durable) and
 * every twin `dev-K` reads back at version M exactly (all applied). With a store
 * ({@linkcode IngestOptions.store}, the `ingest-influx` row), also until the store holds every
 * message's point.
 * @module
 */
import { type BenchRow, loadAverage, num, verdict } from "./report.ts";
import { cpuMeter, formatCpu, log, trackDisposable } from "./proc.ts";
import { exitedOk, type Mosquitto, startBaselineMosquitto, startCountingSub } from "./mosquitto.ts";
import { metric, mqttPort, startBenchNode, waitForVersions } from "./node.ts";
import { type InputKind, median, publishAll, writeInputs } from "./publishers.ts";
import type { StoreKind } from "./ingest_store.ts";

/** A client shape: how many publishers, how many messages each, which in-flight window. */
export interface ClientShape {
  /** Row name. */
  name: string;
  publishers: number;
  messages: number;
  /** `mosquitto_pub -M`; its default (20) when absent. */
  maxInflight?: number;
}

/** The shapes of issue 16: `-M 100` and mosquitto_pub's default in-flight window. */
export const SHAPES: ClientShape[] = [
  { name: "ingest", publishers: 30, messages: 2000, maxInflight: 100 },
  { name: "ingest-default", publishers: 20, messages: 1000 },
];

/** Parameters of the ingest bench. */
export interface IngestOptions {
  /** Publishers of every shape (a quick run); each shape's own count when absent. */
  publishers?: number;
  /** Messages per publisher in every shape; each shape's own count when absent. */
  messages?: number;
  /** Warm-up messages per publisher (to other twins). Default 200. */
  warmup?: number;
  /** Interleaved baseline/node rounds; the medians are reported. Default 3. */
  rounds?: number;
  /** Client shapes, one row each. Default {@linkcode SHAPES}. */
  shapes?: ClientShape[];
  /** Ratio of node to baseline (mosquitto ack-only) throughput required. Default {@linkcode TARGET}. */
  target?: number;
  /** A store the node writes telemetry to; none by default. */
  store?: StoreKind;
}

/** Ratio of node to baseline (mosquitto ack-only) throughput required (issue 16). */
const TARGET = 1.0;

interface Setup {
  name: string;
  n: number;
  m: number;
  w: number;
  inflight?: number;
  dir: string;
  target: number;
  store?: StoreKind;
}

/** One measured run of mosquitto: ack-only, then pub→sub. */
interface BaseRun {
  rate: number;
  secs: number;
  cpu: string;
  subRate: number;
  subSecs: number;
  subCpu: string;
}

/** One measured run of the node. */
interface NodeRun {
  rate: number;
  secs: number;
  cpu: string;
  ackSecs: number;
  ackLatencyMs: number;
  /** Seconds until every twin was at its version (= `secs` without a store). */
  appliedSecs: number;
  /** The store's note on the way to every point stored. */
  storeNote?: string;
}

/** Runs the ingest bench: one row per client shape. */
export async function benchIngest(o: IngestOptions = {}): Promise<BenchRow[]> {
  const dir = await Deno.makeTempDir({ prefix: "twinmill-bench-ingest-" });
  const rounds = o.rounds ?? 3;
  const loadBefore = loadAverage();
  try {
    const setups: Setup[] = [];
    for (const shape of o.shapes ?? SHAPES) {
      const s: Setup = {
        name: shape.name,
        n: o.publishers ?? shape.publishers,
        m: o.messages ?? shape.messages,
        w: o.warmup ?? 200,
        inflight: shape.maxInflight,
        dir: `${dir}/${shape.name}`,
        target: o.target ?? TARGET,
        store: o.store,
      };
      await Deno.mkdir(s.dir);
      await writeInputs(s.dir, s.n, { warm: s.w, run: s.m });
      setups.push(s);
    }
    const bases = setups.map((): BaseRun[] => []);
    const nodes = setups.map((): NodeRun[] => []);
    for (let r = 1; r <= rounds; r++) {
      for (const [i, s] of setups.entries()) {
        log(`${s.name}: round ${r} of ${rounds}`);
        bases[i].push(await baseline(s));
        nodes[i].push(await twinmill(s));
      }
    }
    const load = `machine load average (1, 5, 15 min) before the ingest bench ${loadBefore}, ` +
      `after ${loadAverage()}.`;
    return setups.map((s, i) => row(s, rounds, bases[i], nodes[i], load));
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function row(
  s: Setup,
  rounds: number,
  bases: BaseRun[],
  nodes: NodeRun[],
  load: string,
): BenchRow {
  const base = median(bases, (r) => r.rate);
  const sub = median(bases, (r) => r.subRate);
  const node = median(nodes, (r) => r.rate);
  const ratio = node.rate / base.rate;
  const all = <T>(runs: T[], f: (r: T) => number) => runs.map((x) => num(f(x))).join(", ");
  const window = s.inflight === undefined
    ? "` (default in-flight window, 20)"
    : ` -M ${s.inflight}\``;
  return {
    bench: s.name,
    result: `${num(node.rate)} msgs/s (node, QoS 1, durable + applied${
      s.store ? ` + stored in ${s.store.name}` : ""
    })`,
    baseline: `${num(base.rate)} msgs/s (mosquitto ack-only, no subscriber)`,
    ratio: `${ratio.toFixed(2)}×`,
    target: verdict(`≥ ${s.target.toFixed(1)}×`, ratio >= s.target),
    notes: [
      `${s.n} × \`mosquitto_pub -q 1 -l${window}, ${num(s.m)} messages each ` +
      `(${num(s.n * s.m)} total) after a warm-up of ${s.w} each; ${rounds} interleaved ` +
      `round${rounds === 1 ? "" : "s"}, medians reported (mosquitto ack-only ${
        all(bases, (r) => r.rate)
      }; ` +
      `pub→sub ${all(bases, (r) => r.subRate)}; node ${all(nodes, (r) => r.rate)} msgs/s).`,
      `mosquitto ack-only (median round): every publisher exited after ${
        base.secs.toFixed(2)
      } s; ` +
      `CPU ${base.cpu}.`,
      `mosquitto pub→sub, one \`mosquitto_sub -q 1\` (median round): ${num(sub.subRate)} msgs/s, ` +
      `${sub.subSecs.toFixed(2)} s; CPU ${sub.subCpu}; node ÷ pub→sub = ` +
      `${(node.rate / sub.subRate).toFixed(2)}×.`,
      `node (median round): all PUBACKs after ${node.ackSecs.toFixed(2)} s ` +
      `(${num(s.n * s.m / node.ackSecs)} msgs/s), all applied after ` +
      `${node.appliedSecs.toFixed(2)} s${
        s.store ? `, every point in ${s.store.name} after ${node.secs.toFixed(2)} s` : ""
      }; mean ack latency ${node.ackLatencyMs.toFixed(1)} ms; CPU ${node.cpu}.` +
      (node.storeNote ? ` ${node.storeNote}` : ""),
      ...s.store?.notes ?? [],
      load,
    ],
  };
}

function publishers(s: Setup, port: number, kind: InputKind): Promise<void> {
  return publishAll({
    dir: s.dir,
    ports: [port],
    n: s.n,
    inflight: s.inflight,
    kind,
    twin: (k) => kind === "warm" ? `warm-${k}` : `dev-${k}`,
    clientId: (k) => `bench-${kind}-${k}`,
  });
}

/** Publishers only, no subscriber: seconds until every publisher has exited (all PUBACKs). */
async function ackOnly(s: Setup, broker: Mosquitto, kind: InputKind): Promise<number> {
  const t0 = performance.now();
  await publishers(s, broker.port, kind);
  return (performance.now() - t0) / 1000;
}

/** A `-C` subscriber, then the publishers; seconds until the subscriber has every message. */
async function pubSub(s: Setup, broker: Mosquitto, kind: InputKind): Promise<number> {
  const total = s.n * (kind === "warm" ? s.w : s.m);
  const id = `bench-sub-${kind}`;
  const sub = startCountingSub(broker.port, "twins/#", total, id);
  const received = exitedOk(sub, `mosquitto_sub -C ${total}`);
  await broker.subscribed(id);
  const t0 = performance.now();
  const pubs = publishers(s, broker.port, kind);
  await received;
  const secs = (performance.now() - t0) / 1000;
  await pubs;
  return secs;
}

/** Measures `phase` on `broker` with its CPU use. */
async function measured(broker: Mosquitto, phase: () => Promise<number>) {
  const cpu = cpuMeter({ mosquitto: broker.pid }, { "mosquitto main thread": broker.pid });
  const secs = await phase();
  return { secs, cpu: formatCpu(cpu.stop()) };
}

async function baseline(s: Setup): Promise<BaseRun> {
  log(`${s.name}: baseline — starting mosquitto`);
  const broker = await startBaselineMosquitto(s.dir);
  try {
    log(`${s.name}: baseline warm-up (${s.n} × ${s.w}, pub→sub)`);
    await pubSub(s, broker, "warm");
    log(`${s.name}: baseline ack-only run (${s.n} × ${s.m})`);
    const ack = await measured(broker, () => ackOnly(s, broker, "run"));
    log(`${s.name}: baseline pub→sub run (${s.n} × ${s.m})`);
    const sub = await measured(broker, () => pubSub(s, broker, "run"));
    const rate = s.n * s.m / ack.secs;
    const subRate = s.n * s.m / sub.secs;
    log(
      `${s.name}: baseline ack-only ${num(rate)} msgs/s (${ack.secs.toFixed(2)} s; ${ack.cpu}); ` +
        `pub→sub ${num(subRate)} msgs/s (${sub.secs.toFixed(2)} s)`,
    );
    return { rate, secs: ack.secs, cpu: ack.cpu, subRate, subSecs: sub.secs, subCpu: sub.cpu };
  } finally {
    await broker.stop();
  }
}

async function twinmill(s: Setup): Promise<NodeRun> {
  const store = s.store && trackDisposable(s.store.name, await s.store.start());
  log(`${s.name}: node — starting a fresh twinmill node`);
  const node = await startBenchNode(store?.env);
  try {
    const port = mqttPort(node);
    const ids = (kind: string) => Array.from({ length: s.n }, (_, k) => `${kind}-${k}`);
    log(`${s.name}: node warm-up (${s.n} × ${s.w})`);
    await publishers(s, port, "warm");
    await waitForVersions(node.httpUrl, ids("warm"), s.w);
    await store?.waitStored(node.httpUrl, ids("warm"), s.w, performance.now());
    log(`${s.name}: node run (${s.n} × ${s.m})`);
    const lat0 = await metric(node.httpUrl, "twinmill_mqtt_ack_latency_seconds_sum");
    const cpu = cpuMeter({ node: node.pid, ...store?.pids }, { "node main thread": node.pid });
    const t0 = performance.now();
    await publishers(s, port, "run");
    const ackSecs = (performance.now() - t0) / 1000;
    await waitForVersions(node.httpUrl, ids("dev"), s.m, 120_000);
    const appliedSecs = (performance.now() - t0) / 1000;
    const storeNote = await store?.waitStored(node.httpUrl, ids("dev"), s.m, t0);
    const secs = (performance.now() - t0) / 1000;
    const used = formatCpu(cpu.stop());
    await store?.check(ids("dev"), s.m);
    const acked = await metric(node.httpUrl, "twinmill_mqtt_messages_acked_total");
    if (acked !== s.n * (s.m + s.w)) {
      throw new Error(`Node acknowledged ${acked} messages, expected ${s.n * (s.m + s.w)}`);
    }
    const latSum = await metric(node.httpUrl, "twinmill_mqtt_ack_latency_seconds_sum");
    const ackLatencyMs = (latSum - lat0) / (s.n * s.m) * 1000;
    const rate = s.n * s.m / secs;
    log(`${s.name}: node ${num(rate)} msgs/s (${secs.toFixed(2)} s; ${used})`);
    return { rate, secs, ackSecs, ackLatencyMs, appliedSecs, storeNote, cpu: used };
  } finally {
    await node.dispose();
    await store?.dispose();
  }
}
