/**
 * **fanout** — one twin's telemetry to 100 WebSocket subscribers of a single node, against
 * raw NATS fan-out of the same frames to 100 core NATS subscribers of one `nats-server`.
 *
 * The load runs in a subprocess (`bench/fanout_client.ts`): K subscribers and one publisher
 * paced by a window (message i + W goes out only once every subscriber has message i), so the
 * figure is the sustained rate of deliveries (messages × subscribers per second) with every
 * frame parsed and checked in order. Node side: an MQTT publisher (QoS 0) to
 * `twins/fan-1/telemetry` and K WebSockets on `/v1/stream?twins=fan-1&types=telemetry`.
 * Baseline: the same client program with K NATS connections subscribed to one subject and a
 * NATS publisher sending a frame of the node's event shape and size. Interleaved rounds,
 * medians.
 *
 * A single node does not use NATS at all (its transport is in-process), so the ratio compares
 * the node's whole path (MQTT in, durable inbound log, twin apply, one JSON per event and
 * one WebSocket send per client) with a server that does nothing but fan out.
 * @module
 */
import { REPO_ROOT } from "../tests/harness/mod.ts";
import { type BenchRow, num, verdict } from "./report.ts";
import { formatCpu, log, readAll, spawn } from "./proc.ts";
import { startBenchNode } from "./node.ts";
import { startBenchNats } from "./nats.ts";
import { median } from "./publishers.ts";
import type { FanoutResult, Options as ClientOptions } from "./fanout_client.ts";

/** Parameters of the fan-out bench. */
export interface FanoutOptions {
  /** WebSocket / NATS subscribers. Default 100. */
  subscribers?: number;
  /** Measured messages per run. Default 3,000 (300,000 deliveries). */
  messages?: number;
  /** Messages before the measurement. Default 300. */
  warmup?: number;
  /** Messages ahead of the slowest subscriber. Default 50. */
  window?: number;
  /** Interleaved rounds; medians reported. Default 3. */
  rounds?: number;
}

/** Required ratio of the node's deliveries/s to raw NATS fan-out (issue 16). */
const TARGET = 0.7;
/** The twin whose stream is watched. */
const TWIN = "fan-1";
/** Padding of each device message, bytes (a frame is then about 200 bytes). */
const PAD = 64;

type Run = FanoutResult & { cpuText: string };

/** Runs the fan-out bench. */
export async function benchFanout(o: FanoutOptions = {}): Promise<BenchRow> {
  const subs = o.subscribers ?? 100;
  const messages = o.messages ?? 3000;
  const warmup = o.warmup ?? 300;
  const window = o.window ?? 50;
  const rounds = o.rounds ?? 3;
  const base: Omit<ClientOptions, "mode" | "pids" | "mainThreads"> = {
    subscribers: subs,
    messages,
    warmup,
    window,
    pad: PAD,
    twin: TWIN,
  };
  log("fanout: starting nats-server and a node");
  const nats = await startBenchNats();
  const node = await startBenchNode();
  try {
    const wsUrl = node.httpUrl.replace(/^http/, "ws");
    let template = "";
    const nodes: Run[] = [];
    const bases: Run[] = [];
    for (let r = 1; r <= rounds; r++) {
      log(`fanout: node, round ${r}/${rounds} (${subs} WebSockets, ${num(messages)} messages)`);
      const n = await client({
        ...base,
        mode: "ws",
        wsUrl,
        mqttUrl: node.mqttUrl!,
        pids: { node: node.pid },
        mainThreads: { "node main thread": node.pid },
      });
      nodes.push(n);
      log(`fanout: node ${num(n.rate)} deliveries/s (p50 ${n.p50.toFixed(1)} ms; ${n.cpuText})`);
      // The baseline sends frames of the node's shape and size: `data` as the node sends it.
      template ||= n.sample.replace(/"seq":\d+,"t":[\d.e+]+/, '"seq":0,"t":0');
      log(`fanout: NATS baseline, round ${r}/${rounds} (${subs} subscribers)`);
      const b = await client({
        ...base,
        mode: "nats",
        natsUrl: nats.url,
        template,
        pids: { "nats-server": nats.pid },
        mainThreads: {},
      });
      bases.push(b);
      log(`fanout: NATS ${num(b.rate)} deliveries/s (p50 ${b.p50.toFixed(1)} ms; ${b.cpuText})`);
    }
    const nd = median(nodes, (x) => x.rate);
    const bs = median(bases, (x) => x.rate);
    const ratio = nd.rate / bs.rate;
    const all = (runs: Run[]) => runs.map((x) => num(x.rate)).join(", ");
    const lat = (x: Run) =>
      `p50 ${x.p50.toFixed(1)} ms, p99 ${x.p99.toFixed(1)} ms, max ${x.max.toFixed(1)} ms`;
    return {
      bench: "fanout",
      result: `${num(nd.rate)} msgs/s delivered (1 twin → ${subs} WebSockets; ${
        num(nd.rate / subs)
      } device msgs/s)`,
      baseline: `${num(bs.rate)} msgs/s (raw NATS, 1 subject → ${subs} subscribers)`,
      ratio: `${ratio.toFixed(2)}×`,
      target: verdict(`≥ ${TARGET}×`, ratio >= TARGET),
      notes: [
        `${num(messages)} messages after ${num(warmup)} of warm-up, each to ${subs} subscribers ` +
        `(${num(messages * subs)} deliveries), at most ${window} messages ahead of the slowest ` +
        `subscriber; every frame (${nd.frameBytes} bytes) parsed and checked in order; ` +
        `${rounds} interleaved rounds, medians reported (node ${all(nodes)}; NATS ${
          all(bases)
        } deliveries/s).`,
        `node: MQTT QoS 0 publisher → \`/v1/stream?twins=${TWIN}&types=telemetry\`; latency ` +
        `publish → onmessage ${lat(nd)}; CPU ${nd.cpuText}.`,
        `baseline: one \`nats-server\` (core NATS, no JetStream), ${subs} connections ` +
        `subscribed to one subject, a publisher sending the node's frame (same JSON, same size); ` +
        `latency ${lat(bs)}; CPU ${bs.cpuText}.`,
        `a single node does not use NATS (its transport is in-process): the ratio sets the ` +
        `node's whole path (MQTT in, durable inbound log, apply, one JSON.stringify per event, ` +
        `one WebSocket send — one frame, one write — per subscriber) against a server that ` +
        `only fans out and writes each connection's pending frames together; subscribers and ` +
        `publisher share the machine's 2 cores with the server.`,
      ],
    };
  } finally {
    await node.dispose();
    await nats.stop();
  }
}

/** Runs `bench/fanout_client.ts` once and reads its result; CPU of `pids` meanwhile. */
async function client(o: ClientOptions): Promise<Run> {
  const p = spawn(
    Deno.execPath(),
    ["run", "--allow-all", "bench/fanout_client.ts", JSON.stringify(o)],
    { cwd: REPO_ROOT, stdout: "piped" },
  );
  const [status, out, err] = await Promise.all([
    p.status,
    readAll(p.child.stdout),
    readAll(p.child.stderr),
  ]);
  if (status.code !== 0) {
    throw new Error(`fanout client (${o.mode}) exited with code ${status.code}: ${err.trim()}`);
  }
  const r = JSON.parse(out) as FanoutResult;
  return { ...r, cpuText: formatCpu(r.cpu) };
}
