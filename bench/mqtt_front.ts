/**
 * **mqtt-front** — the cluster's device front: (a) every node's own MQTT listener (devices
 * spread over the 3 nodes, as the load balancer spreads them) against (b) the MQTT listeners of
 * the 3 NATS servers, from which node 1's bridge (`TWINMILL_MQTT_URL`, `TWINMILL_MQTT_SHARE=off`:
 * nats-server has no shared subscriptions) takes every device message into the cluster. Same
 * 3 nodes, same NATS cluster, same load, alternated round by round (medians reported).
 *
 * Load: N raw MQTT 3.1.1 devices (`mqtt_rate.ts`), QoS 1, each at a fixed rate, fresh twins each
 * round. Per setup: PUBACK latency p50/p99 (from the PUBLISH's write), throughput (PUBACKs/s),
 * end-to-end latency (PUBLISH written → the telemetry event of that version on a `/v1/stream`
 * of node 1, for a sample of twins; then every twin is checked at its message count: each
 * applied exactly once), and CPU-seconds per message of the nodes and of the nats-servers
 * (`/proc/<pid>/stat`, from the first PUBLISH until the sampled twins' last events, less what
 * the idle cluster used in as long: leases, heartbeats, probes).
 *
 * Why (b) goes through the bridge: nats-server 2.9 (and 2.10) sends a QoS 1 PUBACK once the
 * message is stored in its own `$MQTT_msgs` stream (when some QoS 1 subscription wants it);
 * the core-NATS subject it maps the topic to (`twins.{id}.telemetry`) gets it at most once, with
 * no tie to that PUBACK. The bridge's persistent session is such a subscription, and it
 * acknowledges on to nats-server only once the message is durable in twinmill.
 * @module
 */
import { startNatsCluster } from "../tests/harness/mod.ts";
import { Histogram } from "./histogram.ts";
import { type BenchRow, num, verdict } from "./report.ts";
import { cpuSeconds, log, sleep, trackDisposable } from "./proc.ts";
import { type BenchNode, startClusterNodes, waitForVersions } from "./node.ts";
import { waitSettled } from "./cluster_settle.ts";
import { rateLoad } from "./mqtt_rate.ts";
import { median } from "./publishers.ts";

/** Parameters of the mqtt-front bench. */
export interface MqttFrontOptions {
  /** Devices (one connection and one twin each). Default 1000. */
  devices?: number;
  /** Load levels: messages per second per device, each measured in turn. Default [0.25, 1]. */
  rates?: number[];
  /** Seconds of load per round (at least 3 messages per device). Default 16. */
  seconds?: number;
  /** Rounds of each setup, alternated. Default 3. */
  rounds?: number;
  /** `TWINMILL_SHARDS`. Default 16. */
  shards?: number;
  /** Twins whose end-to-end latency is sampled. Default 40. */
  sample?: number;
  /** Seconds the idle cluster's CPU is read for (subtracted from each round's). Default 10. */
  idleSeconds?: number;
}

type Setup = "nodes" | "nats";

/** One round's figures. */
interface Round {
  setup: Setup;
  rate: number;
  acked: number;
  ackRate: number;
  p50: number;
  p99: number;
  e2e50: number;
  e2e99: number;
  e2eMax: number;
  nodeCpuMs: number;
  natsCpuMs: number;
}

const SETUPS: Record<Setup, string> = {
  nodes: "(a) node listeners",
  nats: "(b) NATS MQTT + bridge",
};

/** Runs the mqtt-front bench. */
export async function benchMqttFront(o: MqttFrontOptions = {}): Promise<BenchRow> {
  const devices = o.devices ?? 1000;
  const rates = o.rates ?? [0.25, 1];
  const seconds = o.seconds ?? 16;
  const rounds = o.rounds ?? 3;
  const shards = o.shards ?? 16;
  const sample = Math.min(o.sample ?? 40, devices);
  const idleSeconds = o.idleSeconds ?? 10;
  log("mqtt-front: a 3-server NATS cluster with MQTT listeners");
  const nats = trackDisposable("nats cluster", await startNatsCluster(3, { mqtt: true }));
  const nodes: BenchNode[] = [];
  try {
    const ids = ["front-1", "front-2", "front-3"];
    // node 1 bridges nats-server n1's MQTT listener; the others have no bridge (each node
    // subscribed would take every message)
    const bridge = {
      TWINMILL_MQTT_URL: `mqtt://127.0.0.1:${nats.servers[0].mqttPort}`,
      TWINMILL_MQTT_SHARE: "off",
      TWINMILL_SPARKPLUG: "off",
    };
    const started = await Promise.all([
      startClusterNodes(nats.urls, ids.slice(0, 1), shards, bridge),
      startClusterNodes(nats.urls, ids.slice(1), shards),
    ]);
    nodes.push(...started.flat());
    await nodes[0].waitForLog((r) => r.msg === "bridge subscribed", 30_000);
    await waitSettled(nodes, ids, shards);
    /** CPU seconds so far of the 3 nodes, then of the 3 nats-servers. */
    const cpuNow = () => [...nodes, ...nats.servers].map((x) => cpuSeconds(x.pid));
    const idle: number[] = [0, 0, 0, 0, 0, 0];
    const targets: Record<Setup, Array<{ hostname: string; port: number }>> = {
      nodes: nodes.map((x) => ({ hostname: "127.0.0.1", port: x.mqttPort! })),
      nats: nats.servers.map((x) => ({ hostname: "127.0.0.1", port: x.mqttPort! })),
    };
    const round = async (
      setup: Setup,
      prefix: string,
      n: number,
      rate: number,
      m: number,
    ): Promise<Round> => {
      const twin = (d: number) => `${prefix}-${d}`;
      const every = Math.max(1, Math.floor(n / sample));
      const sampled = Array.from({ length: Math.min(sample, n) }, (_, i) => i * every);
      const sentAt = new Map<string, number>();
      const e2e = new Histogram();
      let allSeen!: () => void;
      const seen = new Promise<void>((ok) => allSeen = ok);
      const ws = new WebSocket(
        `${nodes[0].httpUrl.replace("http", "ws")}/v1/stream?types=telemetry&twins=${
          sampled.map(twin).join(",")
        }`,
      );
      await new Promise((ok, fail) => {
        ws.onopen = ok;
        ws.onerror = fail;
      });
      await sleep(1000); // the stream's interest reaches the other nodes (announced at once)
      ws.onmessage = (e) => {
        const ev = JSON.parse(e.data) as { twin: string; data: { seq?: number } };
        const t0 = sentAt.get(`${ev.twin}/${ev.data.seq}`);
        if (t0 === undefined) return;
        e2e.record(performance.now() - t0);
        if (e2e.count === sampled.length * m) allSeen();
      };
      const cpu0 = cpuNow();
      const w0 = performance.now();
      const r = await rateLoad({
        targets: targets[setup],
        devices: n,
        messages: m,
        rate,
        topic: (d) => `twins/${twin(d)}/telemetry`,
        payload: (_d, k) => `{"seq":${k},"temp":${20 + k % 10}}`,
        clientPrefix: `front-${prefix}`,
        onSend: (d, k, at) => d % every === 0 && sentAt.set(`${twin(d)}/${k}`, at),
      });
      // every twin at exactly m (100 GETs at a time: a busy node resets some of 1000); the CPU
      // reading once the sampled twins' last events came, or a second after every twin is current
      const ids = Array.from({ length: n }, (_, d) => twin(d));
      const checked = (async () => {
        for (let i = 0; i < n; i += 100) {
          await waitForVersions(nodes[1].httpUrl, ids.slice(i, i + 100), m, 120_000, {
            retryUnavailable: true,
            intervalMs: 50,
          });
        }
      })();
      await Promise.race([seen, checked.then(() => sleep(1000))]);
      const wall = (performance.now() - w0) / 1000;
      // CPU above the idle cluster's (leases, heartbeats): what the messages cost
      const cpu = cpuNow().map((c, i) => c - cpu0[i] - idle[i] * wall);
      await checked;
      ws.close();
      if (e2e.count < sampled.length * m) {
        log(`mqtt-front: ${e2e.count} of ${sampled.length * m} sampled events seen`);
      }
      const total = n * m;
      return {
        setup,
        rate,
        acked: r.acked,
        ackRate: r.acked / r.seconds,
        p50: r.latency.quantile(0.5),
        p99: r.latency.quantile(0.99),
        e2e50: e2e.quantile(0.5),
        e2e99: e2e.quantile(0.99),
        e2eMax: e2e.max,
        nodeCpuMs: cpu.slice(0, 3).reduce((a, b) => a + b, 0) / total * 1000,
        natsCpuMs: cpu.slice(3).reduce((a, b) => a + b, 0) / total * 1000,
      };
    };
    log("mqtt-front: warm-up of both setups");
    for (const s of ["nodes", "nats"] as const) await round(s, `w-${s}`, 100, 2, 3);
    // the idle cluster's CPU per second and process, subtracted from each round's
    const i0 = cpuNow();
    await sleep(idleSeconds * 1000);
    idle.splice(0, idle.length, ...cpuNow().map((c, i) => (c - i0[i]) / idleSeconds));
    log(`mqtt-front: idle CPU ${idle.map((x) => x.toFixed(3)).join(", ")} cores`);
    const runs: Round[] = [];
    const failed: string[] = [];
    for (const rate of rates) {
      const m = Math.max(3, Math.round(seconds * rate));
      for (let i = 1; i <= rounds; i++) {
        const order: Setup[] = i % 2 === 1 ? ["nodes", "nats"] : ["nats", "nodes"];
        for (const s of order) {
          log(`mqtt-front: ${SETUPS[s]}, round ${i}: ${devices} devices × ${m} at ${rate}/s`);
          try {
            const r = await round(s, `r${rates.indexOf(rate)}-${i}-${s}`, devices, rate, m);
            log(`mqtt-front: ${describe(r)}`);
            runs.push(r);
          } catch (err) {
            // twins late (a shard without an owner for minutes on an overloaded machine) fail
            // the round, not the bench; a twin past its count (applied twice) fails the bench
            const msg = err instanceof Error ? err.message : String(err);
            if (!/below version/.test(msg)) throw err;
            log(`mqtt-front: round failed: ${msg.slice(0, 300)}`);
            failed.push(`${s} at ${rate}/s round ${i}: ${msg.split(";")[0]}`);
          }
        }
      }
    }
    const med = (s: Setup, rate: number): Round => {
      const of = runs.filter((r) => r.setup === s && r.rate === rate);
      if (of.length === 0) throw new Error(`every round of ${s} at ${rate}/s failed`);
      const pick = (f: (r: Round) => number) => f(median(of, f));
      return {
        setup: s,
        rate,
        acked: pick((r) => r.acked),
        ackRate: pick((r) => r.ackRate),
        p50: pick((r) => r.p50),
        p99: pick((r) => r.p99),
        e2e50: pick((r) => r.e2e50),
        e2e99: pick((r) => r.e2e99),
        e2eMax: pick((r) => r.e2eMax),
        nodeCpuMs: pick((r) => r.nodeCpuMs),
        natsCpuMs: pick((r) => r.natsCpuMs),
      };
    };
    const top = rates[rates.length - 1];
    const a = med("nodes", top);
    const b = med("nats", top);
    const cpuA = a.nodeCpuMs + a.natsCpuMs;
    const cpuB = b.nodeCpuMs + b.natsCpuMs;
    return {
      bench: "mqtt-front",
      result: `(a) node listeners: PUBACK p50 ${a.p50.toFixed(1)} / p99 ${a.p99.toFixed(1)} ms, ` +
        `${cpuA.toFixed(2)} ms CPU/msg`,
      baseline: `(b) NATS MQTT + bridge: PUBACK p50 ${b.p50.toFixed(1)} / p99 ${
        b.p99.toFixed(1)
      } ms, ${cpuB.toFixed(2)} ms CPU/msg`,
      ratio: `${(cpuB / cpuA).toFixed(2)}× CPU/msg of (b) over (a)`,
      target: verdict("compose default (a): CPU/msg ≤ (b)'s", cpuA <= cpuB),
      notes: [
        `${rounds} alternated rounds of each setup at each load on one 3-node cluster (${shards} ` +
        `shards) and 3-server NATS cluster; ${devices} raw MQTT 3.1.1 devices, QoS 1, at ` +
        `${rates.join(" then ")} msg/s each for ${seconds} s a round, fresh twins each round; ` +
        `medians of each figure; result and baseline at ${top} msg/s.`,
        ...rates.flatMap((rate) => [
          `${describe(med("nodes", rate))}.`,
          `${describe(med("nats", rate))} (node 1's bridge).`,
        ]),
        `rounds: ${
          runs.map((r) =>
            `${r.setup} at ${r.rate}/s p99 ${r.p99.toFixed(0)} ms, e2e p99 ` +
            `${r.e2e99.toFixed(0)} ms, ${(r.nodeCpuMs + r.natsCpuMs).toFixed(2)} ms CPU/msg`
          ).join("; ")
        }.`,
        ...(failed.length > 0 ? [`failed rounds (not counted): ${failed.join("; ")}.`] : []),
      ],
    };
  } finally {
    for (const x of nodes.reverse()) await x.dispose();
    await nats.dispose();
  }
}

function describe(r: Round): string {
  return `${SETUPS[r.setup]} at ${r.rate} msg/s/device: ${num(r.acked)} PUBACKs at ${
    num(r.ackRate)
  }/s, PUBACK p50 ` +
    `${r.p50.toFixed(1)} ms p99 ${r.p99.toFixed(1)} ms; end-to-end (sampled twins) p50 ` +
    `${r.e2e50.toFixed(1)} ms p99 ${r.e2e99.toFixed(1)} ms max ${r.e2eMax.toFixed(0)} ms; ` +
    `CPU per message: nodes ` +
    `${r.nodeCpuMs.toFixed(3)} ms, nats-servers ${r.natsCpuMs.toFixed(3)} ms`;
}
