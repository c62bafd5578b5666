/**
 * The factory bench's load generator (`bench/factory.ts`), run as a subprocess: `count`
 * MQTT 3.1.1 devices on raw TCP (`Deno.connect`), packets built by hand — no MQTT library,
 * so that the generator costs as little as it can and the same program drives both brokers.
 *
 * 1. `deno run --allow-net bench/factory_client.ts '<json Options>'`
 * 2. Connects devices `fac-<first>` … `fac-<first+count-1>` (CONNECT: client id = device,
 *    clean session, keepalive 60) at `connectRate` per second, each waiting for its CONNACK
 *    (3 attempts); progress on stderr. Then prints one JSON line, a {@linkcode Ready}.
 * 3. Reads one line from stdin: the start time, epoch ms (`Date.now()`), the same for every
 *    generator process.
 * 4. Device g (0 ≤ g < `total`, over all processes) publishes `{"temp":…}` to
 *    `twins/fac-<g>/telemetry` at QoS 1 once a second for `seconds` seconds, at start +
 *    g / total s within each second (devices evenly staggered), packet id = its message
 *    number (1…). The PUBACK latency of each message (from just before its write to its
 *    PUBACK's arrival) goes into a {@linkcode Histogram}.
 * 5. Waits for the last PUBACKs (at most `drainMs`), prints a {@linkcode FactoryResult} line,
 *    and once stdin ends (the parent has read the CPU use of this phase) sends DISCONNECT on
 *    every connection and exits 0.
 * @module
 */
import { Histogram, type HistogramJson } from "./histogram.ts";
import { connectPacket, DISCONNECT, PacketReader, publishPacket } from "./mqtt_wire.ts";

const enc = new TextEncoder();

/** What the parent asks for. */
export interface Options {
  host: string;
  port: number;
  /** Index of this process's first device. */
  first: number;
  /** Devices in this process. */
  count: number;
  /** Devices over all generator processes (for the stagger). */
  total: number;
  /** Messages per device, one a second. */
  seconds: number;
  /** New connections per second (this process). */
  connectRate: number;
  /** Most time to wait for the last PUBACKs, ms. */
  drainMs: number;
}

/** Printed once every device is connected (or has failed to). */
export interface Ready {
  ready: true;
  connected: number;
  /** Attempts that failed (a device has 3). */
  connectFailures: number;
  connectSecs: number;
}

/** Printed at the end. */
export interface FactoryResult {
  devices: number;
  connected: number;
  connectFailures: number;
  /** Connections the broker closed during the publishing phase. */
  dropped: number;
  sent: number;
  acked: number;
  /** PUBACKs for no message in flight, and packets of an unexpected type. */
  unexpected: number;
  /** Per device (index − `first`): messages sent and acknowledged. */
  sentPer: number[];
  ackedPer: number[];
  /** PUBACK latency, ms. */
  latency: HistogramJson;
  /** How late sends went out against their schedule, ms (the generator's own lag). */
  late: HistogramJson;
  /** Seconds from the start time to the last PUBACK (or the drain's end). */
  secs: number;
}

/** One device: its connection, what it has in flight, its counts. */
class Device {
  readonly topic: Uint8Array;
  /** Per message: when it was written (performance.now()), 0 before, −1 once acked. */
  readonly times: Float64Array;
  sent = 0;
  acked = 0;
  closed = false;
  connack: Promise<number>;
  #onConnack!: (rc: number) => void;
  #tail: Promise<void> = Promise.resolve();
  readonly reader: PacketReader;

  constructor(readonly conn: Deno.TcpConn, readonly g: number, seconds: number, s: Stats) {
    this.topic = enc.encode(`twins/fac-${g}/telemetry`);
    this.times = new Float64Array(seconds);
    this.connack = new Promise((r) => this.#onConnack = r);
    this.reader = new PacketReader((type, _flags, body) => {
      if (type === 2) this.#onConnack(body[1]);
      else if (type === 4) {
        const i = ((body[0] << 8) | body[1]) - 1;
        if (this.times[i] > 0) {
          s.latency.record(performance.now() - this.times[i]);
          this.times[i] = -1;
          this.acked++;
          s.acked++;
        } else s.unexpected++;
      } else if (type !== 13) s.unexpected++; // 13: PINGRESP
    });
  }

  /** Reads until the connection ends; marks it closed then. */
  async read(): Promise<void> {
    const buf = new Uint8Array(256);
    try {
      for (let n = await this.conn.read(buf); n !== null; n = await this.conn.read(buf)) {
        this.reader.push(buf.subarray(0, n));
      }
    } catch {
      // reset or closed by us
    }
    this.closed = true;
    this.#onConnack(-1);
  }

  /** Writes `bytes` after the writes before it; `before` runs just before the write. */
  write(bytes: Uint8Array, before?: () => void): Promise<void> {
    this.#tail = this.#tail.then(async () => {
      if (this.closed) return;
      before?.();
      for (let o = 0; o < bytes.length;) o += await this.conn.write(bytes.subarray(o));
    }).catch(() => {
      this.closed = true;
    });
    return this.#tail;
  }

  /** Resolves once every write so far has been made (or has failed). */
  flushed(): Promise<void> {
    return this.#tail;
  }
}

/** Counts over all devices of this process. */
interface Stats {
  latency: Histogram;
  acked: number;
  unexpected: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (msg: string) => console.error(`[factory client] ${msg}`);

/** Connects device `g` (3 attempts); null if it never got a CONNACK 0. */
async function connectDevice(
  o: Options,
  g: number,
  s: Stats,
  failed: () => number,
): Promise<Device | null> {
  for (let attempt = 1; attempt <= 3; attempt++) {
    let d: Device | undefined;
    try {
      const conn = await Deno.connect({ hostname: o.host, port: o.port });
      conn.setNoDelay(true);
      d = new Device(conn, g, o.seconds, s);
      void d.read();
      await d.write(connectPacket(`fac-${g}`));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const rc = await Promise.race([
        d.connack,
        new Promise<number>((r) => timer = setTimeout(() => r(-2), 30_000)),
      ]).finally(() => clearTimeout(timer));
      if (rc === 0) return d;
      throw new Error(rc === -1 ? "closed" : rc === -2 ? "no CONNACK in 30 s" : `CONNACK ${rc}`);
    } catch (err) {
      if (d) {
        d.closed = true;
        try {
          d.conn.close();
        } catch {
          // closed already
        }
      }
      const n = failed();
      if (n <= 5 || n % 1000 === 0) {
        log(
          `fac-${g}: attempt ${attempt}: ${err instanceof Error ? err.message : err} (${n} failed)`,
        );
      }
      await sleep(1000);
    }
  }
  return null;
}

async function main(o: Options): Promise<void> {
  const s: Stats = { latency: new Histogram(), acked: 0, unexpected: 0 };
  let connectFailures = 0;
  const t0 = performance.now();
  const pending: Promise<Device | null>[] = [];
  let done = 0;
  for (let i = 0; i < o.count; i++) {
    const wait = t0 + i * 1000 / o.connectRate - performance.now();
    if (wait > 1) await sleep(wait);
    pending.push(
      connectDevice(o, o.first + i, s, () => ++connectFailures).finally(() => {
        if (++done % 1000 === 0) log(`${done} of ${o.count} connected`);
      }),
    );
  }
  const devices = await Promise.all(pending);
  const connected = devices.filter((d) => d !== null).length;
  const ready: Ready = {
    ready: true,
    connected,
    connectFailures,
    connectSecs: (performance.now() - t0) / 1000,
  };
  console.log(JSON.stringify(ready));

  const stdin = stdinLines();
  const start = performance.now() + (Number(await stdin()) - Date.now());
  const late = new Histogram();
  for (let r = 0; r < o.seconds; r++) {
    for (let i = 0; i < o.count; i++) {
      const due = start + r * 1000 + (o.first + i) * 1000 / o.total;
      const wait = due - performance.now();
      if (wait > 0.5) await sleep(wait);
      const d = devices[i];
      if (!d || d.closed) continue;
      late.record(Math.max(0, performance.now() - due));
      const temp = (15 + ((d.g + r) % 200) / 10).toFixed(1);
      d.write(publishPacket(d.topic, r + 1, enc.encode(`{"temp":${temp}}`)), () => {
        d.times[r] = performance.now();
        d.sent++;
      });
    }
  }
  const live = devices.filter((d): d is Device => d !== null);
  await Promise.all(live.map((d) => d.flushed()));
  const sentNow = () => live.reduce((a, d) => a + d.sent, 0);
  const drainEnd = performance.now() + o.drainMs;
  while (s.acked < sentNow() && performance.now() < drainEnd) await sleep(20);
  const secs = (performance.now() - start) / 1000;
  const result: FactoryResult = {
    devices: o.count,
    connected,
    connectFailures,
    dropped: live.filter((d) => d.closed).length,
    sent: sentNow(),
    acked: s.acked,
    unexpected: s.unexpected,
    sentPer: devices.map((d) => d?.sent ?? 0),
    ackedPer: devices.map((d) => d?.acked ?? 0),
    latency: s.latency.toJSON(),
    late: late.toJSON(),
    secs,
  };
  console.log(JSON.stringify(result));
  // the parent closes stdin once it has read its measurements of this phase
  while (await stdin() !== null) { /* nothing else is expected */ }
  await Promise.all(live.map(async (d) => {
    await d.write(DISCONNECT);
    try {
      d.conn.close();
    } catch {
      // closed by the broker
    }
  }));
}

/** Lines of stdin, one at a time; null at its end. */
function stdinLines(): () => Promise<string | null> {
  const reader = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  return async () => {
    for (;;) {
      const nl = text.indexOf("\n");
      if (nl >= 0) {
        const line = text.slice(0, nl);
        text = text.slice(nl + 1);
        return line;
      }
      const { value, done } = await reader.read();
      if (done) {
        const last = text;
        text = "";
        return last === "" ? null : last;
      }
      text += value;
    }
  };
}

if (import.meta.main) {
  try {
    await main(JSON.parse(Deno.args[0]) as Options);
    Deno.exit(0);
  } catch (err) {
    console.error(err instanceof Error ? err.stack ?? err.message : String(err));
    Deno.exit(1);
  }
}
