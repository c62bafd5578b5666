/**
 * The capacity bench's cluster rig: `nodes` twinmill nodes in cluster mode on 1 nats-server
 * (JetStream R1) or a 3-server JetStream cluster (R3), optionally writing points to an
 * `influxd`, under a paced device load (`capacity_load.ts`). A run ends once every PUBACK is in
 * and the inbound stream `TM_IN` is empty (work queue: a record leaves it once its twins'
 * snapshots are committed and their points written), so the busy phase holds all the work of
 * its messages.
 * @module
 */
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { startInfluxd, startNatsCluster } from "../tests/harness/mod.ts";
import { childPids, log, sleep, trackDisposable } from "./proc.ts";
import { type BenchNode, mqttPort, startClusterNodes } from "./node.ts";
import { waitSettled } from "./cluster_settle.ts";
import { type PacedLoad, pacedLoad, type PacedResult } from "./capacity_load.ts";
import { startJsServer } from "./capacity_raw.ts";

/** One rig run. */
export interface RigOptions {
  nodes: number;
  natsServers: 1 | 3;
  influx: boolean;
  shards: number;
  load: PacedLoad;
  /** Generator binary (`compileGenerator`). */
  bin: string;
  label: string;
}

/** Process names measured: `node1…`, `main:node1…` (main threads), `nats1…`, `influxd`. */
export type RigResult = PacedResult & { nodes: number; natsServers: number };

/** Waits until stream `TM_IN` holds no record (every message applied and acked). */
async function waitDrained(servers: string[], timeoutMs = 120_000): Promise<void> {
  const nc = await connect({ servers });
  try {
    const jsm = await jetstreamManager(nc);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const info = await jsm.streams.info("TM_IN");
      if (info.state.messages === 0) return;
      if (Date.now() > deadline) {
        throw new Error(`TM_IN still holds ${info.state.messages} records after ${timeoutMs} ms`);
      }
      await sleep(50);
    }
  } finally {
    await nc.close();
  }
}

/** Starts the rig, runs the load, stops everything; returns the readings. */
export async function runRig(o: RigOptions): Promise<RigResult> {
  const stops: Array<() => Promise<void>> = [];
  try {
    let urls: string[];
    const pids: Record<string, number> = {};
    if (o.natsServers === 1) {
      const nats = await startJsServer();
      stops.push(() => nats.dispose());
      urls = [nats.url];
      pids.nats1 = nats.pid;
    } else {
      const nats = trackDisposable("nats cluster", await startNatsCluster(3));
      stops.push(() => nats.dispose());
      urls = nats.servers.map((s) => s.url);
      nats.servers.forEach((s, i) => pids[`nats${i + 1}`] = s.pid);
    }
    const env: Record<string, string> = {
      TWINMILL_MAX_CONNECTIONS: String(o.load.devices + 1000),
      TWINMILL_IDLE_SECONDS: "3600",
    };
    if (o.influx) {
      const influx = trackDisposable("influxd", await startInfluxd());
      stops.push(() => influx.dispose());
      Object.assign(env, { INFLUX_URL: influx.url, INFLUX_API: "v1", INFLUX_DB: "capacity" });
      pids.influxd = childPids("influxd").at(-1)!;
    }
    const ids = Array.from({ length: o.nodes }, (_, i) => `cap-${i + 1}`);
    log(`${o.label}: ${o.nodes} node(s), ${o.natsServers} nats-server(s)`);
    const nodes: BenchNode[] = await startClusterNodes(urls.join(","), ids, o.shards, env);
    stops.push(async () => {
      for (const x of nodes) await x.dispose();
    });
    await waitSettled(nodes, ids, o.shards);
    nodes.forEach((x, i) => {
      pids[`node${i + 1}`] = x.pid;
      pids[`main:node${i + 1}`] = x.pid;
    });
    const rssPids = Object.fromEntries(nodes.map((x, i) => [`node${i + 1}`, x.pid]));
    // the busy phase also holds the applying of the last messages
    const drained = () => waitDrained(urls);
    const res = await pacedLoad(
      o.bin,
      nodes.map(mqttPort),
      o.load,
      pids,
      rssPids,
      o.label,
      drained,
    );
    return { ...res, nodes: o.nodes, natsServers: o.natsServers };
  } finally {
    for (const stop of stops.reverse()) await stop();
  }
}
