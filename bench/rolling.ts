/**
 * **rolling** — a rolling restart under traffic, as `tests/integration/cluster_rolling_test.ts`
 * runs it: a 3-server NATS JetStream cluster and N twinmill nodes, devices publishing QoS 1 at a
 * steady rate and moving to another node when theirs goes away; every node in turn is stopped
 * with SIGTERM and started again (waiting for its `/readyz`), then every NATS server in turn
 * (waiting until the JetStream cluster is whole and every node ready). The figure is the time
 * the whole roll took; the baseline is the cold start of the same cluster (NATS servers and
 * nodes up and ready) in the same run. The target is correctness: every twin's version equals
 * the messages its device had acknowledged, and devices saw nothing but reconnects.
 * @module
 */
import {
  freePorts,
  type NodeProcess,
  startNatsCluster,
  startNode,
  waitFor,
} from "../tests/harness/mod.ts";
import { startDevices, waitReady } from "../tests/harness/rolling.ts";
import { diagnoseStall, rollNats, rollNodes, versionMismatches } from "../tests/harness/roll.ts";
import { type BenchRow, num, verdict } from "./report.ts";
import { log, trackDisposable } from "./proc.ts";

/** Parameters of the rolling bench. */
export interface RollingOptions {
  /** twinmill nodes. Default 3. */
  nodes?: number;
  /** NATS servers restarted in turn (of 3). Default 3. */
  natsRestarts?: number;
  /** Devices. Default 20. */
  devices?: number;
  /** Messages per second per device. Default 5. */
  rate?: number;
}

/** Runs the bench and returns its row. */
export async function benchRolling(o: RollingOptions = {}): Promise<BenchRow> {
  const count = o.nodes ?? 3;
  const natsRestarts = o.natsRestarts ?? 3;
  const devicesN = o.devices ?? 20;
  const rate = o.rate ?? 5;
  const t0 = performance.now();
  await using nats = trackDisposable("nats cluster", await startNatsCluster(3));
  const ports = await freePorts(2 * count);
  const nodes: NodeProcess[] = [];
  try {
    for (let i = 0; i < count; i++) {
      nodes.push(
        await startNode({
          NATS_URL: nats.urls,
          TWINMILL_SHARDS: "16",
          TWINMILL_NODE_ID: `n${i + 1}`,
          TWINMILL_HTTP_PORT: String(ports[2 * i]),
          TWINMILL_MQTT_PORT: String(ports[2 * i + 1]),
        }),
      );
    }
    const urls = nodes.map((n) => n.httpUrl);
    await Promise.all(urls.map((u) => waitReady(u)));
    const coldMs = performance.now() - t0;
    log(`rolling: cold start ${num(coldMs / 1000, 1)} s`);

    const devices = await startDevices(
      nodes.map((n) => ({ host: "127.0.0.1", port: n.mqttPort! })),
      { count: devicesN, rate },
    );
    // a second of traffic before the roll
    await waitFor(() => devices.total() >= devicesN * rate, { timeoutMs: 30_000 });
    const start = performance.now();
    const stopped = await rollNodes(nodes, {
      devices,
      onStep: (step) => log(`rolling: ${step}, ${devices.total()} messages acknowledged`),
    });
    for (const [i, st] of stopped.entries()) {
      if (st.code !== 0) devices.errors.push(`node n${i + 1} exited with ${st.code} on SIGTERM`);
    }
    const nodesMs = performance.now() - start;
    await rollNats(nats, nodes, {
      devices,
      count: natsRestarts,
      onStep: (step) => log(`rolling: ${step}, ${devices.total()} messages acknowledged`),
    });
    const rollMs = performance.now() - start;
    await devices.stop();
    const deadline = Date.now() + 30_000;
    const wrong = (await Promise.all(urls.map((u) =>
      versionMismatches(u, devices.acked, deadline)
    )))
      .flat();
    const exact = wrong.length === 0;
    if (!exact) {
      log(`rolling: versions not exact; the inbound stream:\n${await diagnoseStall(nats, nodes)}`);
    }
    const clean = devices.errors.length === 0;
    return {
      bench: "rolling",
      result: `${num(rollMs / 1000, 1)} s to restart ${count} nodes and ${natsRestarts} NATS ` +
        `servers in turn (nodes ${num(nodesMs / 1000, 1)} s); ${num(devices.total())} msgs ` +
        `acked, versions ${exact ? "exact" : `NOT exact (${wrong.length})`}`,
      baseline: `${num(coldMs / 1000, 1)} s cold start of the same cluster`,
      ratio: `${(rollMs / coldMs).toFixed(2)}× the cold start`,
      target: verdict(
        "versions exact through every node, devices see only reconnects",
        exact && clean,
      ),
      notes: [
        `rolling: ${devicesN} devices × ${rate} msg/s QoS 1 (MQTT 5, persistent sessions, moving ` +
        `to the next node when theirs goes away); ${devices.reconnects()} reconnects; each ` +
        "node stopped with SIGTERM and started again once every node was ready; each NATS " +
        "server restarted once the JetStream cluster was whole (one meta leader, every " +
        "stream current) and every node ready.",
        ...wrong.slice(0, 5).map((w) => `rolling: ${w}`),
        ...devices.errors.slice(0, 5).map((e) => `rolling: device error: ${e}`),
      ],
    };
  } finally {
    for (const n of nodes) await n[Symbol.asyncDispose]();
  }
}
