/**
 * **cluster-ingest**: node ingest over the 3 nodes' MQTT ports against raw JetStream publish
 * to the same NATS cluster, in interleaved rounds (see `cluster.ts`).
 * @module
 */
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { type BenchRow, num, verdict } from "./report.ts";
import { cpuMeter, formatCpu, log } from "./proc.ts";
import { type InputKind, median, publishAll, writeInputs } from "./publishers.ts";
import { type BenchNode, mqttPort, waitForVersions } from "./node.ts";

/** Required ratio of node ingest to raw JetStream publish throughput. */
const INGEST_TARGET = 0.5;

/** The twins of `n` publishers of `kind` (a round prefix): `{kind}-{k}`. */
export const twinIdsOf = (kind: string, n: number) =>
  Array.from({ length: n }, (_, k) => `${kind}-${k}`);

/** What the ingest bench runs on and with. */
export interface IngestParams {
  nodes: BenchNode[];
  /** URLs of the NATS servers (the baseline publishes there). */
  natsUrls: string[];
  /** Directory for the publishers' input files. */
  dir: string;
  jsN: number;
  jsInflight: number;
  /** Publishers, messages each, warm-up messages each, `mosquitto_pub -M`. */
  n: number;
  m: number;
  w: number;
  inflight: number;
  shards: number;
  rounds: number;
  /** Shards per node, for the notes. */
  owned: string;
}

/** Runs the ingest rounds; the twins of the last round are `r{rounds}-{k}` at version `m`. */
export async function benchClusterIngest(p: IngestParams): Promise<BenchRow> {
  const { nodes, natsUrls, dir, jsN, jsInflight, n, m, w, inflight, shards, rounds, owned } = p;
  await writeInputs(dir, n, { warm: w, run: m });
  const ports = nodes.map(mqttPort);
  const twinIds = (kind: string) => twinIdsOf(kind, n);
  log(`cluster: node warm-up (${n} × ${w})`);
  await publishers(dir, ports, n, inflight, "warm");
  await waitVersions(nodes[0].httpUrl, twinIds("warm"), w, 60_000);
  // Interleaved rounds of the baseline (raw JetStream publish to the same cluster, the
  // nodes idle) and the node run (fresh twins each round); medians reported.
  const bases: Array<{ rate: number; secs: number }> = [];
  const runs: Array<
    {
      acked: number;
      applied: number;
      ackSecs: number;
      applySecs: number;
      cpu: string;
      unavailable: number;
    }
  > = [];
  for (let round = 1; round <= rounds; round++) {
    log(
      `cluster: JetStream baseline, round ${round} (${
        num(jsN)
      } msgs, ${jsInflight} in flight, R3 file)`,
    );
    const b = await jetStreamBaseline(natsUrls, jsN, jsInflight);
    log(`cluster: JetStream baseline ${num(b.rate)} msgs/s (${b.secs.toFixed(2)} s)`);
    bases.push(b);
    const prefix = `r${round}`;
    log(`cluster: node run, round ${round} (${n} × ${m}, publishers spread over 3 nodes)`);
    const cpu = cpuMeter(Object.fromEntries(nodes.map((x, i) => [`node${i + 1}`, x.pid])));
    const t0 = performance.now();
    await publishers(dir, ports, n, inflight, "run", prefix);
    const ackSecs = (performance.now() - t0) / 1000;
    log(`cluster: all PUBACKs after ${ackSecs.toFixed(2)} s; waiting for every twin at ${m}`);
    const unavailable = await waitVersions(nodes[0].httpUrl, twinIds(prefix), m, 120_000);
    const applySecs = (performance.now() - t0) / 1000;
    const used = formatCpu(cpu.stop());
    const run = {
      acked: n * m / ackSecs,
      applied: n * m / applySecs,
      ackSecs,
      applySecs,
      cpu: used,
      unavailable,
    };
    log(
      `cluster: node ${num(run.acked)} msgs/s acked (${ackSecs.toFixed(2)} s), ` +
        `${num(run.applied)} msgs/s applied (${applySecs.toFixed(2)} s; ${used})`,
    );
    runs.push(run);
  }
  const js = median(bases, (x) => x.rate);
  const med = median(runs, (x) => x.applied);
  const { acked, applied, ackSecs, applySecs } = med;
  const ingestCpu = med.cpu;
  const unavailable = runs.reduce((a, x) => a + x.unavailable, 0);
  const ingestRatio = applied / js.rate;
  return {
    bench: "cluster-ingest",
    result: `${num(applied)} msgs/s applied, ${num(acked)} msgs/s acked (3 nodes, QoS 1)`,
    baseline: `${num(js.rate)} msgs/s (JetStream async publish, R3 file)`,
    ratio: `${ingestRatio.toFixed(2)}× (acked ${(acked / js.rate).toFixed(2)}×)`,
    target: verdict(`≥ ${INGEST_TARGET}×`, ingestRatio >= INGEST_TARGET),
    notes: [
      `${rounds} interleaved rounds, medians reported (baseline ` +
      `${bases.map((x) => num(x.rate)).join(", ")}; node applied ` +
      `${runs.map((x) => num(x.applied)).join(", ")} msgs/s).`,
      `baseline: ${num(jsN)} × ~40-byte messages to stream \`BENCH\` (\`bench.>\`, 3 replicas, ` +
      `file storage) on the 3-server cluster, ≤ ${jsInflight} publishes in flight, ` +
      `${js.secs.toFixed(2)} s until every ack.`,
      `node: 3 nodes (${shards} shards; ${owned}); ${n} × \`mosquitto_pub -q 1 -l -M ` +
      `${inflight}\` (publisher k → node k mod 3), ${m} messages each (${num(n * m)} total) ` +
      `after a warm-up of ${w} each; median round: all PUBACKs after ${
        ackSecs.toFixed(2)
      } s, all twins at ` +
      `version ${m} (read via node 1) after ${applySecs.toFixed(2)} s; CPU ${ingestCpu}.`,
      `ratio is applied msgs/s over the baseline.` +
      (unavailable > 0
        ? ` While polling versions, ${unavailable} GETs answered 503 shard_unavailable ` +
          `(retried).`
        : ""),
    ],
  };
}

/** Publishes `count` ~40-byte messages with ≤ `inflight` unacked; msgs/s until all acks. */
async function jetStreamBaseline(
  servers: string[],
  count: number,
  inflight: number,
): Promise<{ rate: number; secs: number }> {
  const nc = await connect({ servers });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({
      name: "BENCH",
      subjects: ["bench.>"],
      num_replicas: 3,
      storage: StorageType.File,
    });
    const js = jetstream(nc);
    const enc = new TextEncoder();
    const payload = (i: number) => enc.encode(`{"temp":21.5,"rpm":${1000 + i},"ok":true}`);
    // Warm-up: a few hundred messages so that the stream's RAFT group has a leader.
    await Promise.all(Array.from({ length: 200 }, (_, i) => js.publish(`bench.w`, payload(i))));
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const i = next++;
        await js.publish(`bench.d${i % 30}`, payload(i));
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: inflight }, worker));
    const secs = (performance.now() - t0) / 1000;
    const info = await jsm.streams.info("BENCH");
    if (info.state.messages !== count + 200) {
      throw new Error(`Stream BENCH has ${info.state.messages} messages, expected ${count + 200}`);
    }
    await jsm.streams.delete("BENCH");
    return { rate: count / secs, secs };
  } finally {
    await nc.close();
  }
}

/** {@linkcode waitForVersions} for the cluster: 503s are retried and logged. */
async function waitVersions(
  httpUrl: string,
  ids: string[],
  version: number,
  timeoutMs: number,
): Promise<number> {
  const opts = { retryUnavailable: true, intervalMs: 20 };
  const unavailable = await waitForVersions(httpUrl, ids, version, timeoutMs, opts);
  if (unavailable > 0) log(`cluster: ${unavailable} version polls answered 503 (retried)`);
  return unavailable;
}

/** Publisher k on node k mod 3, one twin `{prefix}-{k}` each. */
function publishers(
  dir: string,
  ports: number[],
  n: number,
  inflight: number,
  kind: InputKind,
  prefix: string = kind,
): Promise<void> {
  return publishAll({
    dir,
    ports,
    n,
    inflight,
    kind,
    twin: (k) => `${prefix}-${k}`,
    clientId: (k) => `bench-cluster-${prefix}-${k}`,
  });
}
