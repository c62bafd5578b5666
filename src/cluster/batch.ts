/**
 * The inbound stream's record: a batch of device messages of one shard, taken by one node
 * while its previous publish to that shard was in flight (group commit), stored as one
 * JetStream message. Binary, little-endian:
 *
 * ```
 * u8 version (1) | u32 count | count × ( f64 at | f64 key (NaN: none) |
 *                                        u16 topic length | topic (UTF-8) |
 *                                        u32 payload length | payload )
 * ```
 *
 * Entry `i` of the stream message with sequence `s` is log entry `s * SEQ_STRIDE + i`, so
 * entries keep the stream's order and each has its own sequence for the twin's exactly-once
 * check.
 * @module
 */

/** Most entries in one batch; also the stride of entry sequences. */
export const SEQ_STRIDE = 1024;
/** Most entries a node puts in one batch. */
export const MAX_BATCH_ENTRIES = 500;
/** Most payload bytes a node puts in one batch (one message may be up to 64 KiB more). */
export const MAX_BATCH_BYTES = 512 * 1024;

/** One device message in a batch. */
export interface BatchEntry {
  /** The device's MQTT topic. */
  topic: string;
  payload: Uint8Array;
  /** Arrival time at the node (ms). */
  at: number;
  /** Identity of the message, to skip a device's resend. */
  key?: number;
}

const VERSION = 1;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Log entry sequence of entry `index` of stream message `streamSeq`. */
export function entrySeq(streamSeq: number, index: number): number {
  return streamSeq * SEQ_STRIDE + index;
}

/** Stream sequence of a log entry sequence. */
export function streamSeqOf(entry: number): number {
  return Math.floor(entry / SEQ_STRIDE);
}

/** Encode entries (at most {@linkcode SEQ_STRIDE}). */
export function encodeBatch(entries: BatchEntry[]): Uint8Array {
  if (entries.length > SEQ_STRIDE) {
    throw new RangeError(`A batch holds at most ${SEQ_STRIDE} entries, not ${entries.length}`);
  }
  const topics = entries.map((e) => enc.encode(e.topic));
  let size = 5;
  for (let i = 0; i < entries.length; i++) {
    size += 22 + topics[i].length + entries[i].payload.length;
  }
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  out[0] = VERSION;
  v.setUint32(1, entries.length, true);
  let o = 5;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    v.setFloat64(o, e.at, true);
    v.setFloat64(o + 8, e.key ?? NaN, true);
    v.setUint16(o + 16, topics[i].length, true);
    out.set(topics[i], o + 18);
    o += 18 + topics[i].length;
    v.setUint32(o, e.payload.length, true);
    out.set(e.payload, o + 4);
    o += 4 + e.payload.length;
  }
  return out;
}

/** Decode a batch; throws a `RangeError` naming the problem when it is malformed. */
export function decodeBatch(data: Uint8Array): BatchEntry[] {
  if (data.length < 5 || data[0] !== VERSION) {
    throw new RangeError(`Not a version ${VERSION} batch`);
  }
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const count = v.getUint32(1, true);
  const out: BatchEntry[] = [];
  let o = 5;
  for (let i = 0; i < count; i++) {
    if (o + 18 > data.length) throw new RangeError(`Batch truncated in entry ${i}`);
    const at = v.getFloat64(o, true);
    const key = v.getFloat64(o + 8, true);
    const tl = v.getUint16(o + 16, true);
    o += 18;
    if (o + tl + 4 > data.length) throw new RangeError(`Batch truncated in entry ${i}`);
    const topic = dec.decode(data.subarray(o, o + tl));
    o += tl;
    const pl = v.getUint32(o, true);
    o += 4;
    if (o + pl > data.length) throw new RangeError(`Batch truncated in entry ${i}`);
    const payload = data.subarray(o, o + pl);
    o += pl;
    out.push(Number.isNaN(key) ? { topic, payload, at } : { topic, payload, at, key });
  }
  if (o !== data.length) throw new RangeError(`Batch has ${data.length - o} trailing bytes`);
  return out;
}
