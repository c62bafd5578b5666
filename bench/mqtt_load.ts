/**
 * A lean MQTT 3.1.1 loader for the memory benches: raw packets on `Deno.connect`, no client
 * library. Each connection publishes QoS 1 messages with a window of unacknowledged ones,
 * many PUBLISH packets per socket write, and counts PUBACKs; it sends nothing else (no
 * keepalive: the connection asks for none).
 * @module
 */

import { varint } from "../tests/harness/raw_mqtt.ts";

const enc = new TextEncoder();

/** A CONNECT packet: clean session, keepalive off, client id `id`. */
export function connectPacket(id: string): Uint8Array {
  const cid = enc.encode(id);
  const body = [0, 4, 77, 81, 84, 84, 4, 0x02, 0, 0, cid.length >> 8, cid.length & 255, ...cid];
  return new Uint8Array([0x10, ...varint(body.length), ...body]);
}

/** A QoS 1 PUBLISH packet of `payload` to `topic` with packet id `pid`. */
export function publishPacket(topic: string, payload: string, pid: number): Uint8Array {
  const t = enc.encode(topic);
  const p = enc.encode(payload);
  const len = 2 + t.length + 2 + p.length;
  const head = [0x32, ...varint(len), t.length >> 8, t.length & 255];
  const out = new Uint8Array(head.length + t.length + 2 + p.length);
  out.set(head);
  out.set(t, head.length);
  out[head.length + t.length] = pid >> 8;
  out[head.length + t.length + 1] = pid & 255;
  out.set(p, head.length + t.length + 2);
  return out;
}

/** What one load gave. */
export interface LoadResult {
  /** Messages acknowledged (PUBACK). */
  acked: number;
  /** Seconds from the first PUBLISH until the last PUBACK. */
  seconds: number;
}

/** Options of {@linkcode publishAll}. */
export interface LoadOptions {
  /** Connections, each with its own client id. */
  connections: number;
  /** Unacknowledged QoS 1 messages per connection. */
  window: number;
  /** Called every `every` acknowledgements with the count so far. */
  progress?(acked: number): void;
  every?: number;
}

/**
 * Publishes message `i` (`message(i)` gives topic and payload) for every i < `count`, spread
 * over the connections (each takes the next index when it has room); resolves once all are
 * acknowledged. Throws if the broker refuses the connection or closes it early.
 */
export async function publishAll(
  hostname: string,
  port: number,
  count: number,
  message: (i: number) => { topic: string; payload: string },
  o: LoadOptions,
): Promise<LoadResult> {
  let next = 0;
  let acked = 0;
  const every = o.every ?? 100_000;
  const t0 = performance.now();
  const one = async (c: number) => {
    const conn = await Deno.connect({ hostname, port });
    try {
      await conn.write(connectPacket(`bench-load-${c}-${Date.now()}`));
      const reader = conn.readable.getReader();
      let buf = new Uint8Array(0);
      let connected = false;
      let inflight = 0;
      let pid = 0;
      const fill = async () => {
        const parts: Uint8Array[] = [];
        let size = 0;
        while (inflight < o.window && next < count) {
          const m = message(next++);
          pid = pid % 65535 + 1;
          const p = publishPacket(m.topic, m.payload, pid);
          parts.push(p);
          size += p.length;
          inflight++;
        }
        if (parts.length === 0) return;
        const out = new Uint8Array(size);
        let at = 0;
        for (const p of parts) {
          out.set(p, at);
          at += p.length;
        }
        for (let w = 0; w < out.length;) w += await conn.write(out.subarray(w));
      };
      for (;;) {
        if (connected && inflight === 0 && next >= count) break;
        const r = await reader.read();
        if (r.done) throw new Error(`connection ${c} closed by the broker`);
        const joined = new Uint8Array(buf.length + r.value.length);
        joined.set(buf);
        joined.set(r.value, buf.length);
        let at = 0;
        while (joined.length - at >= 2) {
          const type = joined[at] >> 4;
          const len = joined[at + 1]; // CONNACK and PUBACK: remaining length 2
          if (joined.length - at < 2 + len) break;
          if (type === 2) {
            if (joined[at + 3] !== 0) throw new Error(`CONNACK return code ${joined[at + 3]}`);
            connected = true;
          } else if (type === 4) {
            inflight--;
            if (++acked % every === 0) o.progress?.(acked);
          }
          at += 2 + len;
        }
        buf = joined.slice(at);
        if (connected) await fill();
      }
      reader.releaseLock();
      await conn.write(new Uint8Array([0xe0, 0]));
    } finally {
      conn.close();
    }
  };
  await Promise.all(Array.from({ length: o.connections }, (_, c) => one(c)));
  return { acked, seconds: (performance.now() - t0) / 1000 };
}
