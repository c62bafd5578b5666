/**
 * A fixed-rate MQTT 3.1.1 device load for `mqtt_front.ts`: one raw connection per device
 * (`mqtt_load.ts`'s packets, no client library), each publishing QoS 1 messages at a fixed
 * rate, its phase spread over the period so that the load is even; every PUBACK's latency
 * (from the PUBLISH's write) goes to a {@linkcode Histogram}. Device `d` connects to
 * `targets[d % targets.length]`, as a load balancer would spread them.
 * @module
 */
import { connectPacket, publishPacket } from "./mqtt_load.ts";
import { Histogram } from "./histogram.ts";
import { sleep } from "./proc.ts";

/** Options of {@linkcode rateLoad}. */
export interface RateOptions {
  /** Where devices connect, in turn. */
  targets: Array<{ hostname: string; port: number }>;
  devices: number;
  /** Messages per device. */
  messages: number;
  /** Messages per second per device. */
  rate: number;
  /** Topic of device `d`. */
  topic(d: number): string;
  /** Payload of device `d`'s message `k` (0-based). */
  payload(d: number, k: number): string;
  /** Client id prefix (a device's id is `{prefix}-{d}`). */
  clientPrefix: string;
  /** Called as device `d`'s message `k` is written, with `performance.now()`. */
  onSend?(d: number, k: number, at: number): void;
}

/** What a load gave. */
export interface RateResult {
  /** PUBACKs received. */
  acked: number;
  /** PUBACK latency, ms. */
  latency: Histogram;
  /** Seconds from the first PUBLISH to the last PUBACK. */
  seconds: number;
  /** `performance.now()` of the last PUBACK. */
  lastAckAt: number;
}

/** One device's connection: the PUBLISH write times by packet id, its PUBACK count. */
class Device {
  sent = new Map<number, number>();
  acked = 0;
  #buf = new Uint8Array(0);
  #connack!: () => void;
  #connectFailed!: (e: Error) => void;
  readonly connected = new Promise<void>((ok, fail) => {
    this.#connack = ok;
    this.#connectFailed = fail;
  });
  #error?: Error;
  #waiter?: { n: number; ok(): void; fail(e: Error): void };
  constructor(readonly conn: Deno.TcpConn, readonly r: RateResult) {
    this.connected.catch(() => {});
  }

  #failed(e: Error): void {
    this.#error ??= e;
    this.#connectFailed(e);
    this.#waiter?.fail(e);
  }

  /** Reads CONNACK and PUBACKs until the connection closes. */
  async read(): Promise<void> {
    try {
      for await (const chunk of this.conn.readable) this.#take(chunk);
    } catch (err) {
      this.#failed(err instanceof Error ? err : new Error(String(err)));
    }
    this.#failed(new Error("connection closed by the broker"));
  }

  #take(chunk: Uint8Array): void {
    const joined = new Uint8Array(this.#buf.length + chunk.length);
    joined.set(this.#buf);
    joined.set(chunk, this.#buf.length);
    let at = 0;
    while (joined.length - at >= 2 && joined.length - at >= 2 + joined[at + 1]) {
      const type = joined[at] >> 4;
      if (type === 2) {
        if (joined[at + 3] !== 0) this.#failed(new Error(`CONNACK ${joined[at + 3]}`));
        else this.#connack();
      } else if (type === 4) {
        const pid = (joined[at + 2] << 8) | joined[at + 3];
        const t0 = this.sent.get(pid);
        if (t0 !== undefined) {
          const now = performance.now();
          this.sent.delete(pid);
          this.r.latency.record(now - t0);
          this.r.acked++;
          this.r.lastAckAt = now;
          this.acked++;
          if (this.#waiter && this.acked >= this.#waiter.n) this.#waiter.ok();
        }
      }
      at += 2 + joined[at + 1];
    }
    this.#buf = joined.slice(at);
  }

  /** Resolves once `n` PUBACKs came; rejects if the connection fails first. */
  until(n: number): Promise<void> {
    if (this.acked >= n) return Promise.resolve();
    if (this.#error) return Promise.reject(this.#error);
    return new Promise((ok, fail) => this.#waiter = { n, ok, fail });
  }
}

/**
 * Connects every device (up to 100 at a time), then publishes `messages` per device at `rate`
 * msgs/s each; resolves once all are acknowledged. Throws if a connection is refused or closed.
 */
export async function rateLoad(o: RateOptions): Promise<RateResult> {
  const r: RateResult = { acked: 0, latency: new Histogram(), seconds: 0, lastAckAt: 0 };
  const devices: Device[] = [];
  const reads: Promise<void>[] = [];
  try {
    for (let d0 = 0; d0 < o.devices; d0 += 100) {
      const batch = Array.from({ length: Math.min(100, o.devices - d0) }, async (_, j) => {
        const d = d0 + j;
        // a busy broker now and then resets a connection while 100 connect: tried 3 times
        for (let attempt = 1;; attempt++) {
          const conn = await Deno.connect(o.targets[d % o.targets.length]);
          const dev = new Device(conn, r);
          devices[d] = dev;
          reads.push(dev.read());
          try {
            await conn.write(connectPacket(`${o.clientPrefix}-${d}`));
            await dev.connected;
            return;
          } catch (err) {
            if (attempt >= 3) throw err;
            try {
              conn.close();
            } catch {
              // closed by the broker
            }
          }
        }
      });
      await Promise.all(batch);
    }
    const period = 1000 / o.rate;
    const t0 = performance.now() + 50;
    await Promise.all(devices.map(async (dev, d) => {
      const phase = (d / o.devices) * period;
      const topic = o.topic(d);
      for (let k = 0; k < o.messages; k++) {
        const wait = t0 + phase + k * period - performance.now();
        if (wait > 0) await sleep(wait);
        const pid = k % 65535 + 1;
        const packet = publishPacket(topic, o.payload(d, k), pid);
        const at = performance.now();
        dev.sent.set(pid, at);
        o.onSend?.(d, k, at);
        for (let w = 0; w < packet.length;) w += await dev.conn.write(packet.subarray(w));
      }
      await dev.until(o.messages);
    }));
    r.seconds = (r.lastAckAt - t0) / 1000;
    return r;
  } finally {
    for (const dev of devices) {
      try {
        await dev?.conn.write(new Uint8Array([0xe0, 0]));
        dev?.conn.close();
      } catch {
        // already closed
      }
    }
    await Promise.allSettled(reads);
  }
}
