/**
 * **ingest** — QoS 1 ingest throughput of a node against raw mosquitto, same publishers.
 *
 * Baseline: mosquitto (no persistence) with one `mosquitto_sub -q 1 -t 'twins/#'`; N
 * concurrent `mosquitto_pub -q 1 -l` each send M lines; msgs/s from the first publisher's
 * start until the subscriber has received all N×M.
 *
 * Node: the same publishers against a fresh node's MQTT port; msgs/s from the first
 * publisher's start until every publisher has exited (all PUBACKs, i.e. all durable) and
 * every twin `dev-K` reads back at version M exactly (all applied).
 * @module
 */
import { type BenchRow, num, verdict } from "./report.ts";
import { cpuMeter, formatCpu, log } from "./proc.ts";
import { exitedOk, type Mosquitto, startBaselineMosquitto, startCountingSub } from "./mosquitto.ts";
import { metric, mqttPort, startBenchNode, waitForVersions } from "./node.ts";
import { type InputKind, median, publishAll, writeInputs } from "./publishers.ts";

/** Parameters of the ingest bench. */
export interface IngestOptions {
  /** Concurrent publishers, one twin each. Default 30. */
  publishers?: number;
  /** Messages per publisher. Default 2000. */
  messages?: number;
  /** Warm-up messages per publisher (to other twins). Default 200. */
  warmup?: number;
  /** `mosquitto_pub -M`. Default 100. */
  maxInflight?: number;
  /** Interleaved baseline/node rounds; the medians are reported. Default 3. */
  rounds?: number;
}

/** Ratio of node to baseline throughput required. */
const TARGET = 0.6;

interface Setup {
  n: number;
  m: number;
  w: number;
  inflight: number;
  dir: string;
}

/** Runs the ingest bench. */
export async function benchIngest(o: IngestOptions = {}): Promise<BenchRow> {
  const s: Setup = {
    n: o.publishers ?? 30,
    m: o.messages ?? 2000,
    w: o.warmup ?? 200,
    inflight: o.maxInflight ?? 100,
    dir: await Deno.makeTempDir({ prefix: "twinmill-bench-ingest-" }),
  };
  const rounds = o.rounds ?? 3;
  try {
    await writeInputs(s.dir, s.n, { warm: s.w, run: s.m });
    const bases: Run[] = [];
    const nodes: Run[] = [];
    for (let r = 1; r <= rounds; r++) {
      log(`ingest: round ${r} of ${rounds}`);
      bases.push(await baseline(s));
      nodes.push(await twinmill(s));
    }
    const base = median(bases, (r) => r.rate);
    const node = median(nodes, (r) => r.rate);
    const ratio = node.rate / base.rate;
    const all = (runs: Run[]) => runs.map((x) => num(x.rate)).join(", ");
    return {
      bench: "ingest",
      result: `${num(node.rate)} msgs/s (node, QoS 1, durable + applied)`,
      baseline: `${num(base.rate)} msgs/s (mosquitto pub→sub)`,
      ratio: `${ratio.toFixed(2)}×`,
      target: verdict(`≥ ${TARGET}×`, ratio >= TARGET),
      notes: [
        `${s.n} × \`mosquitto_pub -q 1 -l -M ${s.inflight}\`, ${num(s.m)} messages each ` +
        `(${num(s.n * s.m)} total) after a warm-up of ${s.w} each; ${rounds} interleaved ` +
        `rounds, medians reported (baseline ${all(bases)}; node ${all(nodes)} msgs/s).`,
        `baseline (median round): ${base.secs.toFixed(2)} s; CPU ${base.cpu}.`,
        `node (median round): all PUBACKs after ${node.ackSecs!.toFixed(2)} s, all applied ` +
        `after ${node.secs.toFixed(2)} s; mean ack latency ${node.ackLatencyMs!.toFixed(1)} ms; ` +
        `CPU ${node.cpu}.`,
      ],
    };
  } finally {
    await Deno.remove(s.dir, { recursive: true }).catch(() => {});
  }
}

/** One measured run. */
interface Run {
  rate: number;
  secs: number;
  cpu: string;
  ackSecs?: number;
  ackLatencyMs?: number;
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

/** One baseline phase: a `-C` subscriber, then the publishers; seconds until it has all. */
async function pubSub(s: Setup, broker: Mosquitto, kind: InputKind) {
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

async function baseline(s: Setup): Promise<Run> {
  log("ingest: baseline — starting mosquitto");
  const broker = await startBaselineMosquitto(s.dir);
  try {
    log(`ingest: baseline warm-up (${s.n} × ${s.w})`);
    await pubSub(s, broker, "warm");
    log(`ingest: baseline run (${s.n} × ${s.m})`);
    const cpu = cpuMeter({ mosquitto: broker.pid }, { "mosquitto main thread": broker.pid });
    const secs = await pubSub(s, broker, "run");
    const used = formatCpu(cpu.stop());
    const rate = s.n * s.m / secs;
    log(`ingest: baseline ${num(rate)} msgs/s (${secs.toFixed(2)} s; ${used})`);
    return { rate, secs, cpu: used };
  } finally {
    await broker.stop();
  }
}

async function twinmill(s: Setup): Promise<Run> {
  log("ingest: node — starting a fresh twinmill node");
  const node = await startBenchNode();
  try {
    const port = mqttPort(node);
    const ids = (kind: string) => Array.from({ length: s.n }, (_, k) => `${kind}-${k}`);
    log(`ingest: node warm-up (${s.n} × ${s.w})`);
    await publishers(s, port, "warm");
    await waitForVersions(node.httpUrl, ids("warm"), s.w);
    log(`ingest: node run (${s.n} × ${s.m})`);
    const lat0 = await metric(node.httpUrl, "twinmill_mqtt_ack_latency_seconds_sum");
    const cpu = cpuMeter({ node: node.pid }, { "node main thread": node.pid });
    const t0 = performance.now();
    await publishers(s, port, "run");
    const ackSecs = (performance.now() - t0) / 1000;
    await waitForVersions(node.httpUrl, ids("dev"), s.m, 120_000);
    const secs = (performance.now() - t0) / 1000;
    const used = formatCpu(cpu.stop());
    const acked = await metric(node.httpUrl, "twinmill_mqtt_messages_acked_total");
    if (acked !== s.n * (s.m + s.w)) {
      throw new Error(`Node acknowledged ${acked} messages, expected ${s.n * (s.m + s.w)}`);
    }
    const latSum = await metric(node.httpUrl, "twinmill_mqtt_ack_latency_seconds_sum");
    const ackLatencyMs = (latSum - lat0) / (s.n * s.m) * 1000;
    const rate = s.n * s.m / secs;
    log(`ingest: node ${num(rate)} msgs/s (${secs.toFixed(2)} s; ${used})`);
    return { rate, secs, ackSecs, ackLatencyMs, cpu: used };
  } finally {
    await node.dispose();
  }
}
