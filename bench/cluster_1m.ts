/**
 * **cluster-1m** — a million twins across 3 cluster nodes: the time to load them, each node's
 * RSS with them resident, GETs of random twins through any node and one list page, then a
 * `kill -9` of one node and what its shards' new owners go through: the time until a sample of
 * its twins answers current through a survivor (the failover as a user sees it), then the
 * time until every one of its twins has answered once (each GET activates a twin from its
 * JetStream KV snapshot: loading is lazy, on first use), and the survivors' RSS after.
 *
 * Seeding takes the public device path: one QoS 1 telemetry message per twin over MQTT, from the
 * lean raw-packet loader (`mqtt_load.ts`), spread over the 3 nodes' listeners (twin i to node
 * i mod 3, as a load balancer would); a PUBACK means durable in JetStream (`TM_IN`, R3). The
 * nodes have a long idle time (nothing is passivated). The load ends when every message is
 * acknowledged and the nodes' `twinmill_twins_active` add up to the twin count. The push is
 * gentle (1 connection × 100 in flight per node, see the options). The target is issue 19's
 * failover goal (≤ 2 s) for the sampled twins; the ratio is the nodes' RSS over their idle RSS.
 * @module
 */
import { startNatsCluster } from "../tests/harness/mod.ts";
import { shardOf } from "../src/sharding/shard.ts";
import { Histogram } from "./histogram.ts";
import { type BenchRow, num, verdict } from "./report.ts";
import { cpuMeter, formatCpu, log, memMiB, sleep, trackDisposable } from "./proc.ts";
import { type BenchNode, metricSum, startClusterNodes, twinVersion } from "./node.ts";
import { waitSettled } from "./cluster_settle.ts";
import { publishAll } from "./mqtt_load.ts";

/** Parameters of the cluster-1m bench. */
export interface Cluster1mOptions {
  /** Twins. Default 1,000,000. */
  twins?: number;
  /**
   * Loader connections per node, QoS 1 messages in flight per connection. Default 1 and 100: a
   * harder push (2 × 1000) made every new twin's snapshot writes crowd out the lease renewals on
   * a loaded 2-core machine, and the nodes fenced their shards over and over.
   */
  connections?: number;
  window?: number;
  /** `TWINMILL_SHARDS`. Default 64. */
  shards?: number;
  /** Seconds of random GETs (and twins sampled for the failover). Default 10 (and 500). */
  getSeconds?: number;
  sample?: number;
  /** Pause before the settled RSS reading, ms. Default 15,000. */
  settleMs?: number;
}

const ID = (i: number) => `c-${i}`;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** Runs the cluster-1m bench. */
export async function benchCluster1m(o: Cluster1mOptions = {}): Promise<BenchRow> {
  const twins = o.twins ?? 1_000_000;
  const connections = o.connections ?? 1;
  const window = o.window ?? 100;
  const shards = o.shards ?? 64;
  const getSeconds = o.getSeconds ?? 10;
  const sample = o.sample ?? 500;
  const settleMs = o.settleMs ?? 15_000;
  log("cluster-1m: a 3-server NATS cluster and 3 nodes (TWINMILL_IDLE_SECONDS=3600)");
  const nats = trackDisposable("nats cluster", await startNatsCluster(3));
  const nodes: BenchNode[] = [];
  try {
    const ids = ["m1", "m2", "m3"];
    nodes.push(
      ...await startClusterNodes(nats.urls, ids, shards, { TWINMILL_IDLE_SECONDS: "3600" }),
    );
    const view = await waitSettled(nodes, ids, shards);
    const rss = () => nodes.map((x) => memMiB(x.pid));
    const idle = rss();
    const cpu = cpuMeter({
      ...Object.fromEntries(nodes.map((x, i) => [`node${i + 1}`, x.pid])),
      ...Object.fromEntries(nats.servers.map((x) => [x.name, x.pid])),
    });
    const t0 = performance.now();
    const per = Math.ceil(twins / 3);
    const loads = await Promise.all(nodes.map((x, k) => {
      const count = Math.max(0, Math.min(per, Math.ceil((twins - k) / 3)));
      return publishAll("127.0.0.1", x.mqttPort!, count, (j) => {
        const i = 3 * j + k;
        return {
          topic: `twins/${ID(i)}/telemetry`,
          payload: `{"temp":${(15 + (i % 200) / 10).toFixed(1)},"rpm":${i % 3000},"ok":true}`,
        };
      }, {
        connections,
        window,
        every: Math.max(10_000, Math.round(count / 5)),
        progress: (n) => log(`cluster-1m: node ${k + 1}: ${num(n)} acknowledged`),
      });
    }));
    const acked = loads.reduce((a, l) => a + l.acked, 0);
    const ackSecs = (performance.now() - t0) / 1000;
    if (acked !== twins) throw new Error(`${acked} of ${twins} acknowledged`);
    log(`cluster-1m: all ${num(twins)} acknowledged after ${ackSecs.toFixed(1)} s`);
    const active = await waitActive(nodes, twins, Math.max(300_000, twins / 2)).catch((err) => {
      log(`cluster-1m: the nodes' warnings: ${warnings(nodes)}`);
      throw err;
    });
    const loadSecs = (performance.now() - t0) / 1000;
    const used = formatCpu(cpu.stop());
    const loaded = rss();
    log(`cluster-1m: resident after ${loadSecs.toFixed(1)} s (${active.join(", ")}); settling`);
    await sleep(settleMs);
    const settled = rss();
    log(
      `cluster-1m: RSS MiB idle ${idle.map((x) => num(x)).join(" / ")}, loaded ${
        loaded.map((x) => num(x)).join(" / ")
      }, settled ${settled.map((x) => num(x)).join(" / ")}`,
    );

    // queries: random GETs through node 2 (a third local, two thirds routed), one list page
    const get = await randomGets(nodes[1].httpUrl, twins, getSeconds);
    log(
      `cluster-1m: random GETs ${num(get.rps)}/s, p50 ${get.p50.toFixed(1)} ms, p99 ${
        get.p99.toFixed(1)
      } ms`,
    );
    const listStart = performance.now();
    const list = await fetch(`${nodes[0].httpUrl}/v1/twins?limit=100`);
    const listBody = await list.json() as { items?: unknown[] };
    const listMs = performance.now() - listStart;
    log(`cluster-1m: list page ${list.status}, ${listBody.items?.length} items, ${listMs} ms`);

    // failover: kill -9 node 3; its twins through node 1
    const victim = nodes[2];
    const mine = new Set(view.nodes.find((x) => x.id === ids[2])!.shards);
    const orphans: string[] = [];
    for (let i = 0; i < twins; i++) if (mine.has(shardOf(ID(i), shards))) orphans.push(ID(i));
    const picked = Array.from(
      { length: Math.min(sample, orphans.length) },
      (_, j) => orphans[Math.floor(j * orphans.length / sample)],
    );
    log(`cluster-1m: kill -9 of ${ids[2]} (${mine.size} shards, ${num(orphans.length)} twins)`);
    const k0 = performance.now();
    await victim.kill("SIGKILL");
    await allCurrent(nodes[0].httpUrl, picked, 64);
    const sampleMs = performance.now() - k0;
    log(`cluster-1m: ${picked.length} sampled twins current after ${num(sampleMs)} ms`);
    await allCurrent(nodes[0].httpUrl, orphans, 64);
    const allMs = performance.now() - k0;
    log(`cluster-1m: all ${num(orphans.length)} of its twins answered after ${num(allMs)} ms`);
    const after = nodes.slice(0, 2).map((x) => memMiB(x.pid));
    await victim.dispose();
    const mib = (xs: number[]) => xs.map((x) => num(x)).join(" / ");
    const perTwin = settled.reduce((a, x, i) => a + x - idle[i], 0) * 1048576 / twins;
    return {
      bench: "cluster-1m",
      result: `${num(twins)} twins on 3 nodes: ${mib(settled)} MiB RSS; failover of ` +
        `${num(orphans.length)} twins: sample current ${(sampleMs / 1000).toFixed(1)} s, every ` +
        `twin ${(allMs / 1000).toFixed(1)} s`,
      baseline: `${mib(idle)} MiB RSS (idle nodes)`,
      ratio: `${(sum(settled) / sum(idle)).toFixed(2)}× of idle RSS (${num(perTwin)} B/twin)`,
      target: verdict("the killed node's sampled twins current ≤ 2 s", sampleMs <= 2000),
      notes: [
        `load: ${num(twins)} QoS 1 messages (one per twin) over the 3 nodes' MQTT listeners, ` +
        `${connections} raw connections × ${window} in flight per node; all PUBACKs after ` +
        `${ackSecs.toFixed(1)} s, every twin active after ${loadSecs.toFixed(1)} s ` +
        `(${num(twins / loadSecs)} twins/s; ${shards} shards); CPU ${used}.`,
        `RSS per node (MiB): idle ${mib(idle)}, loaded ${mib(loaded)}, ${settleMs / 1000} s ` +
        `later ${mib(settled)}; twins active per node ${active.join(" / ")}.`,
        `GET /v1/twins/c-<random> through node 2, 32 in flight for ${getSeconds} s: ` +
        `${num(get.rps)} req/s, p50 ${get.p50.toFixed(1)} ms, p99 ${get.p99.toFixed(1)} ms; ` +
        `${get.bad} not 200 at version 1. GET /v1/twins?limit=100 through node 1: ` +
        `${list.status}, ${listBody.items?.length ?? 0} twins in ${num(listMs)} ms.`,
        `kill -9 of node 3 (${mine.size} shards, ${num(orphans.length)} twins): ${picked.length} ` +
        `of its twins sampled evenly answer 200 at version 1 through node 1 after ` +
        `${num(sampleMs)} ms; every one of its twins has answered (64 GETs in flight, each ` +
        `activating its twin from its snapshot) after ${num(allMs)} ms ` +
        `(${num(orphans.length / (allMs / 1000))} twins/s); survivors' RSS then ${mib(after)} MiB.`,
        `the nodes' warnings and errors: ${warnings(nodes)}.`,
      ],
    };
  } finally {
    for (const x of nodes.reverse()) await x.dispose();
    await nats.dispose();
  }
}

/** The nodes' warn and error log lines, counted by message. */
function warnings(nodes: BenchNode[]): string {
  const counts = new Map<string, number>();
  for (const line of nodes.flatMap((x) => x.logs)) {
    try {
      const r = JSON.parse(line) as { level?: string; msg?: string };
      if (r.level === "warn" || r.level === "error") {
        counts.set(r.msg ?? "?", (counts.get(r.msg ?? "?") ?? 0) + 1);
      }
    } catch {
      // not JSON
    }
  }
  return [...counts].map(([m, n]) => `${m} × ${n}`).join("; ") || "none";
}

/** Waits until the nodes' `twinmill_twins_active` add up to `twins`; returns each node's. */
async function waitActive(nodes: BenchNode[], twins: number, ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  let last = 0;
  for (;;) {
    const active = await Promise.all(
      nodes.map((x) => metricSum(x.httpUrl, "twinmill_twins_active")),
    );
    const sum = active.reduce((a, b) => a + b, 0);
    if (sum >= twins) return active;
    if (sum - last >= 100_000 || sum < last) log(`cluster-1m: ${num(sum)} twins active`);
    if (sum - last >= 100_000) last = sum;
    const waited = ms - (deadline - Date.now());
    if (Date.now() > deadline || (sum === 0 && waited > 60_000)) {
      throw new Error(`${sum} of ${twins} twins active after ${waited} ms`);
    }
    await sleep(500);
  }
}

/** GETs random twins for `seconds` with 32 in flight: req/s, latency, answers not at version 1. */
async function randomGets(httpUrl: string, twins: number, seconds: number) {
  const h = new Histogram();
  let bad = 0;
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (performance.now() < end) {
      const s = performance.now();
      const v = await twinVersion(httpUrl, ID(Math.floor(Math.random() * twins)), () => {});
      h.record(performance.now() - s);
      if (v !== 1) bad++;
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  return { rps: h.count / secs, p50: h.quantile(0.5), p99: h.quantile(0.99), bad };
}

/** Polls `ids` (`inflight` GETs at a time) until every one answers 200 at version 1. */
async function allCurrent(httpUrl: string, ids: string[], inflight: number): Promise<void> {
  let left = ids;
  const deadline = Date.now() + 600_000;
  while (left.length > 0) {
    const missing: string[] = [];
    let next = 0;
    await Promise.all(Array.from({ length: inflight }, async () => {
      while (next < left.length) {
        const id = left[next++];
        const v = await twinVersion(httpUrl, id, () => {}).catch(() => 0);
        if (v > 1) throw new Error(`Twin ${id} at version ${v}, expected 1`);
        if (v !== 1) missing.push(id);
      }
    }));
    left = missing;
    if (left.length === 0) return;
    if (Date.now() > deadline) throw new Error(`${left.length} twins not current after 600 s`);
    await sleep(25);
  }
}
