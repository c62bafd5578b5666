/**
 * A raw MQTT client for tests that must break the protocol's rules or control exactly what
 * reaches the server in one write (several PUBLISHes in one TCP segment): hand-encoded CONNECT
 * (clean session) and QoS 1 PUBLISH of MQTT 3.1.1 or 5, whole packets read back.
 * @module
 */
import assert from "node:assert/strict";

const enc = new TextEncoder();

/** The MQTT remaining-length varint of `n`. */
export function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

const str = (s: string) => [...[s.length >> 8, s.length & 0xff], ...enc.encode(s)];
const packet = (type: number, body: number[]) => [type, ...varint(body.length), ...body];

/** CONNECT with a clean session, MQTT 5 or 3.1.1. */
const connect = (v: 4 | 5, id: string) =>
  packet(0x10, [...str("MQTT"), v, 0x02, 0, 60, ...(v === 5 ? [0] : []), ...str(id)]);
/** PUBLISH at QoS 1 (bytes). */
export const publish = (v: 4 | 5, topic: string, id: number, body: string) =>
  packet(0x32, [...str(topic), id >> 8, id & 0xff, ...(v === 5 ? [0] : []), ...enc.encode(body)]);
/** PINGREQ (bytes). */
export const PINGREQ = [0xc0, 0];

/** One packet read back: its type (high nibble of the first byte) and what follows the length. */
export interface RawPacket {
  type: number;
  body: Uint8Array;
}

/** A connected raw client. */
export interface RawMqtt {
  /** Write the packets in one write. */
  send(...packets: number[][]): Promise<number>;
  /** The next whole packet; null once the server closed the connection. */
  read(): Promise<RawPacket | null>;
  close(): void;
}

/** Connect to `port` as `id` with MQTT `v` (4: 3.1.1) and a clean session; CONNACK checked. */
export async function rawMqtt(port: number, v: 4 | 5, id: string): Promise<RawMqtt> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let buf = new Uint8Array(0);
  const read = async (): Promise<RawPacket | null> => {
    for (;;) {
      if (buf.length >= 2) {
        let len = 0, mul = 1, i = 1;
        for (; i < buf.length; i++) {
          len += (buf[i] & 0x7f) * mul;
          mul *= 128;
          if ((buf[i] & 0x80) === 0) break;
        }
        if (i < buf.length && buf.length >= i + 1 + len) {
          const p = { type: buf[0] >> 4, body: buf.slice(i + 1, i + 1 + len) };
          buf = buf.slice(i + 1 + len);
          return p;
        }
      }
      const chunk = new Uint8Array(4096);
      const n = await conn.read(chunk);
      if (n === null) return null;
      const next = new Uint8Array(buf.length + n);
      next.set(buf);
      next.set(chunk.subarray(0, n), buf.length);
      buf = next;
    }
  };
  await conn.write(new Uint8Array(connect(v, id)));
  const connack = await read();
  assert.equal(connack?.type, 2);
  assert.equal(connack.body[1], 0, "connection accepted");
  return {
    send: (...packets: number[][]) => conn.write(new Uint8Array(packets.flat())),
    read,
    close: () => conn.close(),
  };
}

/** The next packet is a PUBACK of `id` with no error (MQTT 5: reason code 0, if given). */
export async function puback(
  c: { read(): Promise<{ type: number; body: Uint8Array } | null> },
  id: number,
) {
  const p = await c.read();
  assert.equal(p?.type, 4, "PUBACK");
  assert.equal((p.body[0] << 8) | p.body[1], id, "its packet id");
  assert.equal(p.body[2] ?? 0, 0, "success");
}
