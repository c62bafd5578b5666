/**
 * **cluster-ingest** and **cluster-routed-get** — a 3-node twinmill cluster on a 3-server
 * NATS JetStream cluster (`tests/harness` `startNatsCluster(3)`).
 *
 * cluster-ingest: baseline = raw JetStream async publish (`@nats-io/jetstream`, stream
 * `BENCH`, `bench.>`, R3, file storage) of N small messages with up to 500 in flight, msgs/s
 * until every ack. Node side: 30 `mosquitto_pub -q 1 -l -M 100` spread over the 3 nodes' MQTT
 * ports, 30 twins × 700 messages, msgs/s until every publisher has exited (all PUBACKs, i.e.
 * durable in JetStream) and every twin reads back (via node 1) at exactly its message count.
 *
 * cluster-routed-get: `wrk -t2 -c200 -d6s` (3 interleaved rounds, medians) on `GET /v1/twins/{id}`, in turn over every twin
 * owned by node 1, against node 1 (local) and node 2 (routed to node 1 over NATS
 * request/reply).
 * @module
 */
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { startNatsCluster } from "../tests/harness/mod.ts";
import { shardOf } from "../src/sharding/shard.ts";
import { type BenchRow, num, verdict } from "./report.ts";
import { wrk, type WrkResult } from "./wrk.ts";
import { cpuMeter, formatCpu, log, sleep, trackDisposable } from "./proc.ts";
import { type InputKind, median, publishAll, writeInputs } from "./publishers.ts";
import {
  type BenchNode,
  mqttPort,
  startClusterNodes,
  twinVersion,
  waitForVersions,
} from "./node.ts";

/** Parameters of the cluster benches. */
export interface ClusterOptions {
  /** Messages of the JetStream baseline. Default 20,000. */
  jsMessages?: number;
  /** Most JetStream publishes in flight. Default 500. */
  jsInflight?: number;
  /** Concurrent publishers, one twin each. Default 30. */
  publishers?: number;
  /** Messages per publisher. Default 700. */
  messages?: number;
  /** Warm-up messages per publisher (to other twins). Default 50. */
  warmup?: number;
  /** `mosquitto_pub -M`. Default 100. */
  maxInflight?: number;
  /** `TWINMILL_SHARDS`. Default 16. */
  shards?: number;
  /** wrk duration of each measured run, seconds. Default 6. */
  seconds?: number;
  /** wrk warm-up of each GET path, seconds. Default 2. */
  warmupSeconds?: number;
  /** Interleaved rounds of each measurement; medians reported. Default 3. */
  rounds?: number;
  /** Also one GET round at 50 connections (in the notes). Default true. */
  at50?: boolean;
}

/** Required ratio of node ingest to raw JetStream publish throughput. */
const INGEST_TARGET = 0.5;
/** wrk connections of the routed GET rounds (both paths saturate their node). */
const CONNECTIONS = 200;

/** Required ratio of routed to local GET throughput. */
const ROUTED_TARGET = 0.5;

/** Shape of `GET /v1/cluster` that the bench reads. */
interface ClusterView {
  settled: boolean;
  nodes: Array<{ id: string; shards: number[] }>;
  shards: Array<{ shard: number; owner: string | null; epoch: number | null; state: string }>;
}

/** Runs both cluster benches on one cluster; returns their two rows. */
export async function benchCluster(o: ClusterOptions = {}): Promise<BenchRow[]> {
  const jsN = o.jsMessages ?? 20_000;
  const jsInflight = o.jsInflight ?? 500;
  const n = o.publishers ?? 30;
  const m = o.messages ?? 700;
  const w = o.warmup ?? 50;
  const inflight = o.maxInflight ?? 100;
  const shards = o.shards ?? 16;
  const secs = o.seconds ?? 6;
  const warmSecs = o.warmupSeconds ?? 2;
  const rounds = o.rounds ?? 3;
  const at50 = o.at50 ?? true;
  const dir = await Deno.makeTempDir({ prefix: "twinmill-bench-cluster-" });
  log("cluster: starting a 3-server NATS JetStream cluster");
  const nats = trackDisposable("nats cluster", await startNatsCluster(3));
  const nodes: BenchNode[] = [];
  try {
    // Three nodes on the cluster.
    const ids = ["bench-1", "bench-2", "bench-3"];
    log(`cluster: starting 3 twinmill nodes (${shards} shards)`);
    // profiling: e.g. BENCH_NODE_V8_FLAGS=--prof writes V8 logs in the working directory
    const v8 = Deno.env.get("BENCH_NODE_V8_FLAGS");
    nodes.push(...await startClusterNodes(nats.urls, ids, shards, v8 ? { DENO_V8_FLAGS: v8 } : {}));
    const view = await waitSettled(nodes, ids, shards);
    const owned = view.nodes.map((x) => `${x.id}: ${x.shards.length}`).join(", ");
    log(`cluster: settled (${owned})`);

    // Ingest.
    await writeInputs(dir, n, { warm: w, run: m });
    const ports = nodes.map(mqttPort);
    const twinIds = (kind: string) => Array.from({ length: n }, (_, k) => `${kind}-${k}`);
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
      const b = await jetStreamBaseline(nats.servers.map((x) => x.url), jsN, jsInflight);
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
    const ingestRow: BenchRow = {
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

    // Routed GET: ownership may have moved during the ingest, so read it again.
    const after = await waitSettled(nodes, ids, shards);
    const twins = twinIds(`r${rounds}`).filter((id) =>
      after.shards[shardOf(id, shards)]?.owner === ids[0]
    );
    if (twins.length === 0) throw new Error(`No twin r${rounds}-* is owned by ${ids[0]}`);
    const twinShards = [...new Set(twins.map((id) => shardOf(id, shards)))].sort((a, b) => a - b);
    const paths = twins.map((id) => `/v1/twins/${id}`);
    const local = `${nodes[0].httpUrl}${paths[0]}`;
    const routed = `${nodes[1].httpUrl}${paths[0]}`;
    for (const id of twins) {
      const v = await twinVersion(nodes[1].httpUrl, id);
      if (v !== m) {
        throw new Error(`GET ${nodes[1].httpUrl}/v1/twins/${id}: version ${v}, not ${m}`);
      }
    }
    log(`cluster: GET warm-up (${warmSecs} s each) on ${twins.length} twins owned by ${ids[0]}`);
    await wrk(local, warmSecs, true, paths);
    await wrk(routed, warmSecs, true, paths);
    const natsPids = nats.servers.map((x) => x.pid);
    // Interleaved rounds, medians: one run on this shared 2-core machine varies by ±30 %.
    // Measured at CONNECTIONS connections, where both paths saturate their node; at 50 the
    // routed path is bound by the extra NATS round trip's latency, not by its cost (noted).
    const locals: Array<WrkResult & { cpu: string }> = [];
    const routeds: Array<WrkResult & { cpu: string }> = [];
    const run = (what: string, url: string, pid: number, c: number, owner?: number) =>
      load(what, url, pid, secs, paths, natsPids, c, owner);
    for (let round = 1; round <= rounds; round++) {
      locals.push(await run(`local (node 1), round ${round}`, local, nodes[0].pid, CONNECTIONS));
      routeds.push(
        await run(`routed, round ${round}`, routed, nodes[1].pid, CONNECTIONS, nodes[0].pid),
      );
    }
    const l = median(locals, (x) => x.rps);
    const r = median(routeds, (x) => x.rps);
    const l50 = at50
      ? await run("local (node 1), 50 connections", local, nodes[0].pid, 50)
      : undefined;
    const r50 = at50
      ? await run("routed, 50 connections", routed, nodes[1].pid, 50, nodes[0].pid)
      : undefined;
    const probe = await fetch(routed);
    const probeText = `${probe.status} ${(await probe.text()).slice(0, 200)}`;
    const warnings = nodes.slice(0, 2).flatMap((x, i) =>
      x.logs.filter((line) => /"level":"(warn|error)"/.test(line)).slice(-2)
        .map((line) => `node ${i + 1}: ${line.slice(0, 240)}`)
    );
    const clean = [...locals, ...routeds, ...(l50 && r50 ? [l50, r50] : [])].every((x) =>
      x.non2xx === 0 && x.socketErrors === ""
    );
    const getRatio = r.rps / l.rps;
    const getRow: BenchRow = {
      bench: "cluster-routed-get",
      result: `${num(r.rps)} req/s 2xx (GET via node 2, routed to owner node 1)` +
        (clean ? "" : `; ${r.non2xx} non-2xx, socket errors: ${r.socketErrors || "none"}`),
      baseline: `${num(l.rps)} req/s (same GET on owner node 1)`,
      ratio: `${getRatio.toFixed(2)}×`,
      target: verdict(`≥ ${ROUTED_TARGET}×`, getRatio >= ROUTED_TARGET && clean),
      notes: [
        `\`wrk -t2 -c${CONNECTIONS} -d${secs}s\`, each connection reading in turn the ${twins.length} twins ` +
        `r${rounds}-* owned by ${ids[0]} (shards ${
          twinShards.join(", ")
        }), after a ${warmSecs} s warm-up of ` +
        `each; ${rounds} interleaved rounds, medians reported (local ` +
        `${locals.map((x) => num(x.rps)).join(", ")}; routed ` +
        `${routeds.map((x) => num(x.rps)).join(", ")} req/s).`,
        ...(l50 && r50
          ? [
            `at 50 connections (one round): local ${num(l50.rps)}, routed ${num(r50.rps)} ` +
            `req/s (${(r50.rps / l50.rps).toFixed(2)}×; routed latency ${r50.latency}, serving ` +
            `node CPU ${r50.cpu}) — there the routed path waits on the NATS round trip with CPU ` +
            `to spare.`,
          ]
          : []),
        `local (median round): latency ${l.latency}; CPU ${l.cpu}.`,
        `routed (median round): ${
          num(r.requests)
        } responses (${r.non2xx} non-2xx, socket errors: ` +
        `${r.socketErrors || "none"}); latency ${r.latency}; CPU ${r.cpu}. GET via node 2 right ` +
        `after: ${probeText}.`,
        ...(clean ? [] : warnings.map((w) => `last warnings: ${w}`)),
      ],
    };
    return [ingestRow, getRow];
  } finally {
    for (const x of nodes.reverse()) await x.dispose();
    await nats.dispose();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
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

/**
 * Polls `GET /v1/cluster` on every node until each has given a complete view (settled, the 3
 * node ids, every shard owned) and those views agree on every shard's owner. A view is read
 * from KV key listings, which now and then come back incomplete or with a node twice while
 * heartbeats are written, so such views are skipped, not trusted.
 */
export async function waitSettled(nodes: BenchNode[], ids: string[], shards: number) {
  const deadline = Date.now() + 60_000;
  const good = new Map<number, ClusterView>();
  let glitches = 0;
  let last = "";
  while (true) {
    await Promise.all(nodes.map(async (x, i) => {
      try {
        const v = await (await fetch(`${x.httpUrl}/v1/cluster`)).json() as ClusterView;
        const distinct = new Set(v.nodes.map((y) => y.id));
        const complete = v.settled && distinct.size === ids.length &&
          ids.every((id) => distinct.has(id)) && v.shards.length === shards &&
          v.shards.every((s) => s.owner !== null && s.state === "owned");
        if (complete) good.set(i, v);
        else glitches++;
        last = JSON.stringify(v.nodes.map((y) => [y.id, y.shards.length]));
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      }
    }));
    const owners = [...good.values()].map((v) => v.shards.map((s) => s.owner).join(","));
    if (good.size === nodes.length) {
      if (owners.every((o) => o === owners[0])) {
        const v = good.get(0)!;
        // Dedupe the node list (see above) for the notes.
        const seen = new Set<string>();
        v.nodes = v.nodes.filter((y) => !seen.has(y.id) && seen.add(y.id));
        if (glitches > 0) log(`cluster: skipped ${glitches} incomplete /v1/cluster views`);
        return v;
      }
      good.clear(); // ownership moved: start over
    }
    if (Date.now() > deadline) throw new Error(`Cluster not settled after 60 s: ${last}`);
    await sleep(200);
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

/** A measured wrk run with the CPU of the serving node(s). */
async function load(
  what: string,
  url: string,
  pid: number,
  secs: number,
  paths: string[],
  natsPids: number[],
  connections: number,
  ownerPid?: number,
): Promise<WrkResult & { cpu: string }> {
  log(`cluster: GET ${what} (wrk -t2 -c${connections} -d${secs}s ${url})`);
  const pids: Record<string, number> = { "serving node": pid };
  if (ownerPid !== undefined) pids["owner node"] = ownerPid;
  natsPids.forEach((p, i) => (pids[`nats${i + 1}`] = p));
  const cpu = cpuMeter(pids, { "serving node main thread": pid });
  const r = await wrk(url, secs, false, paths, connections);
  const used = formatCpu(cpu.stop());
  log(
    `cluster: GET ${what}: ${num(r.rps)} req/s (2xx), ${r.non2xx} non-2xx, ` +
      `socket errors ${r.socketErrors || "none"}, latency ${r.latency} (${used})`,
  );
  return { ...r, cpu: used };
}
