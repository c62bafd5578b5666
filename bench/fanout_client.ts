/**
 * The fan-out bench's load, run as a subprocess: K subscribers of one stream and one
 * publisher, in one process so that every delivery's latency is measured on one clock.
 *
 * `deno run --allow-net bench/fanout_client.ts '<json Options>'` prints one JSON line with a
 * {@linkcode FanoutResult} on stdout once every subscriber has received every message.
 *
 * - `ws`: K WebSockets on a node's `/v1/stream?twins=<twin>&types=telemetry`; the publisher is
 *   an MQTT client (npm:mqtt, QoS 0) sending `{"seq","t","pad"}` to `twins/<twin>/telemetry`.
 * - `nats`: K core NATS connections subscribed to one subject; the publisher is another NATS
 *   connection publishing, on that subject, a frame shaped like the node's event frame (same
 *   JSON, same size: `template`), with `seq` and `t` filled in.
 *
 * Both sides are paced alike: message i + W is published only once every subscriber has
 * received message i (W = `window`), so neither server's buffers grow without bound and
 * the figure is the sustained delivery rate. Each subscriber parses every frame (JSON) and
 * checks that sequence numbers arrive in order, with none missing.
 * @module
 */
import mqtt from "mqtt";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { cpuMeter } from "./proc.ts";

/** What the parent asks for. */
export interface Options {
  mode: "ws" | "nats";
  subscribers: number;
  /** Measured messages (each delivered to every subscriber). */
  messages: number;
  /** Messages sent and fully delivered before the measurement. */
  warmup: number;
  /** Most messages published but not yet received by every subscriber. */
  window: number;
  /** Bytes of padding in each device message. */
  pad: number;
  /** ws: the node's `ws://host:port`; nats: unused. */
  wsUrl?: string;
  /** ws: the node's `mqtt://host:port`. */
  mqttUrl?: string;
  /** nats: `nats://host:port`. */
  natsUrl?: string;
  /** ws: the twin; nats: part of the subject. */
  twin: string;
  /** nats: a node event frame with `"seq":0` and `"t":0` to be replaced (see module doc). */
  template?: string;
  /** Processes whose CPU use over the measured phase is reported (by name). */
  pids: Record<string, number>;
  /** Processes whose main thread's CPU use is reported too. */
  mainThreads: Record<string, number>;
}

/** What the subprocess prints. */
export interface FanoutResult {
  /** Deliveries (messages × subscribers) in the measured phase. */
  deliveries: number;
  /** Seconds from the first measured publish to the last delivery. */
  secs: number;
  /** Deliveries per second. */
  rate: number;
  /** Delivery latency (publish → subscriber's onmessage), ms. */
  p50: number;
  p99: number;
  max: number;
  /** Bytes of one delivered frame (the last one). */
  frameBytes: number;
  /** One delivered frame. */
  sample: string;
  /** Cores busy over the measured phase: `pids`, main threads, `client` (this process), machine. */
  cpu: Record<string, number>;
}

interface Msg {
  seq: number;
  t: number;
}

/** Reads `seq` and `t` from a frame: a node event (`data.seq`) or the NATS baseline's copy. */
function parse(text: string): Msg {
  const m = JSON.parse(text);
  return m.data;
}

async function main(o: Options): Promise<FanoutResult> {
  const total = o.warmup + o.messages;
  // Per message: how many subscribers have it; `full` = messages every subscriber has.
  const have = new Uint16Array(total + 1);
  let full = 0;
  const lat = new Float64Array(o.messages * o.subscribers);
  let latN = 0;
  let probes = 0; // sync phase: subscribers that have seen any probe
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  let lastFrame = "";
  let tEnd = 0;
  const t0Origin = performance.timeOrigin;
  const now = () => t0Origin + performance.now();

  const fail = (err: Error) => {
    failure ??= err;
    wake?.();
  };
  /** A subscriber's frame handler (`next` = the seq it expects). */
  const subscriber = () => {
    let next = 1;
    let synced = false;
    return (text: string) => {
      const m = parse(text);
      if (m.seq < 0) { // a sync probe
        if (!synced) {
          synced = true;
          probes++;
          wake?.();
        }
        return;
      }
      if (m.seq !== next) {
        fail(new Error(`subscriber expected seq ${next}, got ${m.seq}`));
        return;
      }
      next++;
      if (m.seq > o.warmup) lat[latN++] = now() - m.t;
      if (++have[m.seq] === o.subscribers) {
        while (full < total && have[full + 1] === o.subscribers) full++;
        if (full === total) {
          tEnd = performance.now();
          lastFrame = text;
        }
        wake?.();
      }
    };
  };
  const until = async (cond: () => boolean, what: string, ms = 30_000) => {
    const deadline = Date.now() + ms;
    while (!cond()) {
      if (failure) throw failure;
      if (Date.now() > deadline) throw new Error(`timeout: ${what}`);
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 50);
      });
      wake = undefined;
    }
    if (failure) throw failure;
  };

  const pad = "x".repeat(o.pad);
  const closers: Array<() => Promise<void>> = [];
  let publish: (seq: number) => void;
  try {
    if (o.mode === "ws") {
      const url = `${o.wsUrl}/v1/stream?twins=${encodeURIComponent(o.twin)}&types=telemetry`;
      const sockets = await Promise.all(
        Array.from({ length: o.subscribers }, () =>
          new Promise<WebSocket>((resolve, reject) => {
            const ws = new WebSocket(url);
            const on = subscriber();
            ws.onmessage = (e) => on(e.data as string);
            ws.onopen = () => resolve(ws);
            ws.onerror = () => reject(new Error(`WebSocket ${url} failed`));
            ws.onclose = (e) => {
              if (full < total) fail(new Error(`WebSocket closed early: ${e.code} ${e.reason}`));
            };
          })),
      );
      closers.push(async () => {
        for (const ws of sockets) {
          ws.onclose = null;
          ws.close();
        }
        await Promise.resolve();
      });
      const client = await mqtt.connectAsync(o.mqttUrl!, {
        clientId: "bench-fanout-pub",
        reconnectPeriod: 0,
      });
      closers.push(() => client.endAsync());
      const topic = `twins/${o.twin}/telemetry`;
      publish = (seq) =>
        void client.publish(topic, `{"seq":${seq},"t":${now()},"pad":"${pad}"}`, { qos: 0 });
    } else {
      const subject = `bench.fan.${o.twin}`;
      const conns: NatsConnection[] = [];
      for (let i = 0; i < o.subscribers; i++) {
        const nc = await connect({ servers: o.natsUrl! });
        conns.push(nc);
        const on = subscriber();
        const dec = new TextDecoder();
        nc.subscribe(subject, {
          callback: (err, m) => err ? fail(err) : on(dec.decode(m.data)),
        });
        await nc.flush();
      }
      const pub = await connect({ servers: o.natsUrl! });
      conns.push(pub);
      closers.push(async () => {
        await Promise.all(conns.map((c) => c.close()));
      });
      const [head, tail] = o.template!.split('"seq":0,"t":0');
      if (tail === undefined) throw new Error('template has no "seq":0,"t":0');
      const enc = new TextEncoder();
      publish = (seq) =>
        pub.publish(subject, enc.encode(`${head}"seq":${seq},"t":${now()}${tail}`));
    }

    // Sync: probes until every subscriber is live (a subscription takes a moment to register).
    for (let p = 1; probes < o.subscribers; p++) {
      if (failure) throw failure;
      if (p > 200) throw new Error(`only ${probes} of ${o.subscribers} subscribers are live`);
      publish(-p);
      await until(() => probes === o.subscribers, "probes", 100).catch(() => {});
    }

    // Warm-up and measurement: W messages ahead of the slowest subscriber.
    let sent = 0;
    let t0 = 0;
    let meter: ReturnType<typeof cpuMeter> | undefined;
    while (sent < total) {
      while (sent < total && sent - full < o.window) {
        if (sent === o.warmup) {
          await until(() => full === sent, "warm-up delivered");
          t0 = performance.now();
          meter = cpuMeter(o.pids, o.mainThreads);
        }
        publish(++sent);
      }
      await until(() => sent - full < o.window, `window (${full} of ${total} delivered)`);
    }
    await until(() => full === total, `every delivery (${full} of ${total})`, 60_000);
    const { bench: client, clients: _, ...cpu } = meter!.stop();
    const secs = (tEnd - t0) / 1000;
    const sorted = lat.slice(0, latN).sort();
    const pct = (q: number) => sorted[Math.min(latN - 1, Math.floor(q * latN))];
    return {
      deliveries: o.messages * o.subscribers,
      secs,
      rate: o.messages * o.subscribers / secs,
      p50: pct(0.5),
      p99: pct(0.99),
      max: sorted[latN - 1],
      frameBytes: new TextEncoder().encode(lastFrame).length,
      sample: lastFrame,
      cpu: { ...cpu, client },
    };
  } finally {
    for (const c of closers.reverse()) await c().catch(() => {});
  }
}

if (import.meta.main) {
  try {
    const r = await main(JSON.parse(Deno.args[0]) as Options);
    console.log(JSON.stringify(r));
    Deno.exit(0);
  } catch (err) {
    console.error(err instanceof Error ? err.stack ?? err.message : String(err));
    Deno.exit(1);
  }
}
