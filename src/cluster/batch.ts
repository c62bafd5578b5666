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
 *
 * MQTT 5 user properties of the entries travel in a header of the record
 * ({@linkcode encodeBatchProps}), not in this framing: a node of an earlier version reads the
 * record as before (and applies the messages without their properties); a record without the
 * header has none.
 * @module
 */
import { type UserProperties, withinLimits } from "../../actors/user_properties.ts";

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
  /** The message's MQTT 5 user properties (within their limits). */
  props?: UserProperties;
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

/** Non-ASCII and control characters as JSON `\uXXXX` escapes: a header value is one ASCII line. */
const NOT_ASCII = /[^\x20-\x7e]/g;
const escapeUnit = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/**
 * The header value carrying the user properties of `entries`: JSON, ASCII only, an object of
 * entry index to its pairs flattened (`{"3": ["line", "L3", "shift", "night"]}`); undefined
 * when no entry has any.
 */
export function encodeBatchProps(entries: BatchEntry[]): string | undefined {
  let out: Record<number, string[]> | undefined;
  for (let i = 0; i < entries.length; i++) {
    const props = entries[i].props;
    if (!props || props.length === 0) continue;
    (out ??= {})[i] = props.flat();
  }
  return out && JSON.stringify(out).replace(NOT_ASCII, escapeUnit);
}

/**
 * Most bytes the header adds for `props` (each UTF-16 unit at most 6 as an escape, plus quotes,
 * commas and the index): what a batch counts toward its size.
 */
export function propsHeaderBytes(props: UserProperties | undefined): number {
  if (!props) return 0;
  let n = 12;
  for (const [name, value] of props) n += 6 * (name.length + value.length) + 6;
  return n;
}

/**
 * Sets the entries' properties from a record's header; a malformed header, or pairs out of
 * the limits, are ignored (the messages themselves are kept).
 */
export function decodeBatchProps(header: string, entries: BatchEntry[]): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(header);
  } catch {
    return;
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return;
  for (const [k, flat] of Object.entries(parsed)) {
    const e = entries[Number(k)];
    if (!e || !Array.isArray(flat) || flat.length % 2 !== 0) continue;
    const props: Array<readonly [string, string]> = [];
    for (let i = 0; i < flat.length; i += 2) props.push([flat[i], flat[i + 1]]);
    if (withinLimits(props)) e.props = props;
  }
}
