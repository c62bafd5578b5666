/**
 * MQTT 3.1.1 packets built and split by hand, for the factory bench's load generator
 * (`bench/factory_client.ts`): CONNECT, PUBLISH at QoS 1, DISCONNECT, and a reader that cuts a
 * byte stream into packets. Just what the generator needs, at the least cost per message.
 * @module
 */

const enc = new TextEncoder();

/** MQTT remaining length (variable byte integer). */
function lengthBytes(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 128;
    out.push(b);
  } while (n > 0);
  return out;
}

/** CONNECT, MQTT 3.1.1, clean session, no credentials. */
export function connectPacket(clientId: string, keepalive = 60): Uint8Array {
  const id = enc.encode(clientId);
  const body = [0, 4, 77, 81, 84, 84, 4, 0x02, keepalive >> 8, keepalive & 255];
  const rest = body.length + 2 + id.length;
  return new Uint8Array([
    0x10,
    ...lengthBytes(rest),
    ...body,
    id.length >> 8,
    id.length & 255,
    ...id,
  ]);
}

/** PUBLISH at QoS 1 of `payload` to `topic` (UTF-8) with `packetId`. */
export function publishPacket(
  topic: Uint8Array,
  packetId: number,
  payload: Uint8Array,
): Uint8Array {
  const rest = 2 + topic.length + 2 + payload.length;
  const len = lengthBytes(rest);
  const p = new Uint8Array(1 + len.length + rest);
  p[0] = 0x32;
  p.set(len, 1);
  let o = 1 + len.length;
  p[o++] = topic.length >> 8;
  p[o++] = topic.length & 255;
  p.set(topic, o);
  o += topic.length;
  p[o++] = packetId >> 8;
  p[o++] = packetId & 255;
  p.set(payload, o);
  return p;
}

/** DISCONNECT. */
export const DISCONNECT = new Uint8Array([0xe0, 0]);

/**
 * Splits a byte stream into MQTT packets: any number of packets per chunk, a packet (or its
 * fixed header) split over chunks. `onPacket` gets the type, the flags and the body (the
 * bytes after the remaining length), a view valid only during the call.
 */
export class PacketReader {
  #rest: Uint8Array | null = null;

  constructor(readonly onPacket: (type: number, flags: number, body: Uint8Array) => void) {}

  /** Feeds the next bytes read; throws on a malformed remaining length. */
  push(chunk: Uint8Array): void {
    let buf = chunk;
    if (this.#rest) {
      buf = new Uint8Array(this.#rest.length + chunk.length);
      buf.set(this.#rest);
      buf.set(chunk, this.#rest.length);
      this.#rest = null;
    }
    let off = 0;
    while (off < buf.length) {
      let len = 0;
      let i = off + 1;
      let complete = false;
      for (let mul = 1; i < buf.length; mul *= 128) {
        const b = buf[i++];
        len += (b & 127) * mul;
        if ((b & 128) === 0) {
          complete = true;
          break;
        }
        if (i - off - 1 === 4) throw new Error("malformed remaining length");
      }
      if (!complete || buf.length - i < len) break;
      this.onPacket(buf[off] >> 4, buf[off] & 15, buf.subarray(i, i + len));
      off = i + len;
    }
    if (off < buf.length) this.#rest = buf.slice(off);
  }
}
