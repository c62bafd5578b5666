/**
 * MQTT packet sizes enforced while reading, before anything is buffered or authenticated: the
 * fixed header announces a packet's length (its remaining-length varint), and a connection
 * whose next packet is announced over the limit is closed at once. mqtt-packet would
 * otherwise buffer the announced bytes as they stream in (250 MB per connection, without
 * credentials).
 * @module
 */
import type { Duplex } from "node:stream";

/** Largest CONNECT (remaining length): client id, will, username and password. */
export const MAX_CONNECT_BYTES = 32 * 1024;
/** Largest packet after CONNECT: a 64 KiB payload, a topic of up to 64 KiB and headers. */
export const MAX_PACKET_BYTES = 256 * 1024;
/**
 * Where a connection's guard cuts packets after CONNECT: a backstop past aedes's own check of
 * `MAX_PACKET_BYTES` (its MQTT 5 Maximum Packet Size), which closes the connection as the
 * header arrives too and tells an MQTT 5 client why (DISCONNECT `0x95`) first.
 */
export const GUARD_PACKET_BYTES = 2 * MAX_PACKET_BYTES;

/** Why a connection was cut. */
export type Oversize = "connect_too_large" | "packet_too_large" | "malformed_length";

/** Follows MQTT framing across chunks and tells when a packet is announced over its limit. */
export class PacketSizeGuard {
  #skip = 0;
  #inHeader = false;
  #len = 0;
  #mul = 1;
  #first = true;
  constructor(readonly maxConnect = MAX_CONNECT_BYTES, readonly maxPacket = MAX_PACKET_BYTES) {}

  /** Feed the next bytes read; null while every packet keeps within its limit. */
  feed(b: Uint8Array): Oversize | null {
    let i = 0;
    while (i < b.length) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, b.length - i);
        this.#skip -= n;
        i += n;
        continue;
      }
      if (!this.#inHeader) { // packet type and flags
        this.#inHeader = true;
        this.#len = 0;
        this.#mul = 1;
        i++;
        continue;
      }
      const byte = b[i++];
      this.#len += (byte & 0x7f) * this.#mul;
      this.#mul *= 128;
      const first = this.#first;
      const limit = first ? this.maxConnect : this.maxPacket;
      if (this.#len > limit) return first ? "connect_too_large" : "packet_too_large";
      if (byte & 0x80) {
        if (this.#mul >= 128 ** 4) return "malformed_length";
        continue;
      }
      this.#inHeader = false;
      this.#first = false;
      this.#skip = this.#len;
    }
    return null;
  }
}

/**
 * Wrap a connection's `read()` (as aedes calls it) with a {@linkcode PacketSizeGuard}: past
 * a limit the socket is destroyed and `onOversize` told; nothing more is handed on.
 */
export function guardPacketSize<S extends Duplex>(
  sock: S,
  onOversize: (why: Oversize) => void,
  guard = new PacketSizeGuard(MAX_CONNECT_BYTES, GUARD_PACKET_BYTES),
): S {
  const read = sock.read.bind(sock);
  let cut = false;
  sock.read = (n?: number) => {
    if (cut) return null;
    const b = read(n);
    if (b === null || typeof b === "string") return b;
    const why = guard.feed(b);
    if (why === null) return b;
    cut = true;
    sock.destroy();
    onOversize(why);
    return null;
  };
  return sock;
}
