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
import { startNatsCluster } from "../tests/harness/mod.ts";
import type { BenchRow } from "./report.ts";
import { log, trackDisposable } from "./proc.ts";
import { type BenchNode, startClusterNodes } from "./node.ts";
import { waitSettled } from "./cluster_settle.ts";
import { benchClusterIngest } from "./cluster_ingest.ts";
import { benchRoutedGet } from "./cluster_get.ts";

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

    const ingestRow = await benchClusterIngest({
      nodes,
      natsUrls: nats.servers.map((x) => x.url),
      dir,
      jsN,
      jsInflight,
      n,
      m,
      w,
      inflight,
      shards,
      rounds,
      owned,
    });
    const getRow = await benchRoutedGet({
      nodes,
      natsPids: nats.servers.map((x) => x.pid),
      ids,
      shards,
      rounds,
      n,
      m,
      secs,
      warmSecs,
      at50,
    });
    return [ingestRow, getRow];
  } finally {
    for (const x of nodes.reverse()) await x.dispose();
    await nats.dispose();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
