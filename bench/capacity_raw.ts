/**
 * The capacity bench's reference costs of the servers alone, without a node: nats-server
 * CPU-seconds per message for core NATS (publish → one subscriber), JetStream R1 and R3
 * (async publish, one message per publish, ≤ 500 in flight), and influxd CPU-seconds per point
 * (InfluxDB 1.x `POST /write`, batches of 5,000 points, 2 in flight). The client runs in the
 * bench process and is not counted.
 * @module
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { startInfluxd, startNats, startNatsCluster } from "../tests/harness/mod.ts";
import { childPids, log, trackDisposable } from "./proc.ts";
import { cpuOf, phase } from "./capacity_load.ts";

/** CPU-seconds per message (per point for influxd) of each server alone. */
export interface RawCosts {
  natsCore: number;
  jsR1: number;
  /** Sum over the 3 servers. */
  jsR3: number;
  /** The busiest of the 3 servers (the stream leader). */
  jsR3Max: number;
  influxPoint: number;
}

const enc = new TextEncoder();
const payload = (i: number) => enc.encode(`{"temp":21.5,"rpm":${1000 + i},"ok":true}`);

/** Starts a nats-server with JetStream; returns it with its pid. */
export async function startJsServer() {
  const before = new Set(childPids("nats-server"));
  const nats = trackDisposable("nats-server (JetStream)", await startNats({ jetstream: true }));
  const pid = childPids("nats-server").find((p) => !before.has(p));
  if (!pid) throw new Error("cannot find the pid of the nats-server just started");
  return Object.assign(nats, { pid });
}

/** nats-server CPU-seconds per message, core NATS, one subscriber receiving every message. */
async function coreCost(n: number): Promise<number> {
  const nats = await startJsServer();
  const pub = await connect({ servers: nats.url });
  const sub = await connect({ servers: nats.url });
  try {
    let got = 0;
    let done: () => void = () => {};
    const all = new Promise<void>((r) => done = r);
    sub.subscribe("cap.core", {
      callback: () => {
        if (++got === n) done();
      },
    });
    await sub.flush();
    const p = phase({ nats: nats.pid });
    for (let i = 0; i < n; i++) {
      pub.publish("cap.core", payload(i));
      if (i % 1000 === 999) await pub.flush();
    }
    await pub.flush();
    await all;
    return cpuOf(p.stop()) / n;
  } finally {
    await pub.close();
    await sub.close();
    await nats.dispose();
  }
}

/** Publishes `n` messages to a fresh stream of `replicas`, ≤ 500 in flight. */
async function jsPublish(nc: NatsConnection, n: number, replicas: number): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({
    name: "CAP",
    subjects: ["cap.>"],
    num_replicas: replicas,
    storage: StorageType.File,
  });
  const js = jetstream(nc);
  await Promise.all(Array.from({ length: 100 }, (_, i) => js.publish("cap.w", payload(i))));
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      await js.publish(`cap.d${i % 30}`, payload(i));
    }
  };
  await Promise.all(Array.from({ length: 500 }, worker));
}

/** nats-server CPU-seconds per JetStream publish on one server (R1). */
async function jsR1Cost(n: number): Promise<number> {
  const nats = await startJsServer();
  const nc = await connect({ servers: nats.url });
  try {
    const p = phase({ nats: nats.pid });
    await jsPublish(nc, n, 1);
    return cpuOf(p.stop()) / n;
  } finally {
    await nc.close();
    await nats.dispose();
  }
}

/** Sum and busiest server's CPU-seconds per JetStream publish on a 3-server cluster (R3). */
async function jsR3Cost(n: number): Promise<{ sum: number; max: number }> {
  const nats = trackDisposable("nats cluster", await startNatsCluster(3));
  const nc = await connect({ servers: nats.urls.split(",") });
  try {
    const p = phase(Object.fromEntries(nats.servers.map((s) => [s.name, s.pid])));
    await jsPublish(nc, n, 3);
    const ph = p.stop();
    return { sum: cpuOf(ph) / n, max: Math.max(...Object.values(ph.cpu)) / n };
  } finally {
    await nc.close();
    await nats.dispose();
  }
}

/** influxd CPU-seconds per point: `n` points of 1,000 series, 5,000 a request, 2 in flight. */
async function influxCost(n: number): Promise<number> {
  const influx = trackDisposable("influxd", await startInfluxd());
  try {
    const pid = childPids("influxd").at(-1)!;
    await influx.query("CREATE DATABASE cap");
    const t = Date.now() * 1e6;
    const lines = (from: number, to: number) =>
      Array.from({ length: to - from }, (_, k) => {
        const i = from + k;
        return `telemetry,device=dev-${i % 1000},site=plant-1 temp=${20 + (i % 100) / 10},` +
          `rpm=${1000 + (i % 2000)}i,ok=true ${t + i}`;
      }).join("\n");
    const batches = Array.from({ length: Math.ceil(n / 5000) }, (_, b) => b);
    const p = phase({ influxd: pid });
    let next = 0;
    const lane = async () => {
      for (let b = next++; b < batches.length; b = next++) {
        await influx.write(lines(b * 5000, Math.min(n, (b + 1) * 5000)), "cap");
      }
    };
    await Promise.all([lane(), lane()]);
    return cpuOf(p.stop()) / n;
  } finally {
    await influx.dispose();
  }
}

/** Measures every reference cost; `n` messages (and points) each. */
export async function rawCosts(n: number, withR3: boolean): Promise<RawCosts> {
  log(`capacity: raw nats-server core NATS, ${n * 10} messages`);
  const natsCore = await coreCost(n * 10);
  log(`capacity: raw JetStream R1, ${n} publishes`);
  const jsR1 = await jsR1Cost(n);
  let r3 = { sum: NaN, max: NaN };
  if (withR3) {
    log(`capacity: raw JetStream R3 (3 servers), ${n} publishes`);
    r3 = await jsR3Cost(n);
  }
  log(`capacity: raw influxd v1 writes, ${n * 5} points`);
  const influxPoint = await influxCost(n * 5);
  return { natsCore, jsR1, jsR3: r3.sum, jsR3Max: r3.max, influxPoint };
}
