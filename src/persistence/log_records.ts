/**
 * Records of the Deno KV inbound log: the entries of one append are packed, in sequence order,
 * into records of at most {@linkcode RECORD_BYTES} each (one value, one mutation, instead of
 * one per entry; an entry larger than that is a record of its own). A record is deleted once
 * every entry in it is retired; while it is partly retired, which of its entries are is kept
 * beside it as a bitmap, so a replay yields exactly the unretired entries.
 *
 * Record layout: byte 0 = flags (0-3; a legacy one-entry value starts with `{`), then per
 * entry `seq` (f64), `at` (f64), topic length (u16), payload length (u32), topic (UTF-8),
 * payload. Flag 1: an entry of the record has a key (`LogEntry.key`, the bridge's messages):
 * then every entry has its key (f64, NaN for none) after `at`. Flag 2: an entry has MQTT 5
 * user properties (`LogEntry.props`): then every entry ends with their count (u8) and, per
 * pair, name length (u8), name, value length (u16), value (UTF-8). Records of earlier
 * versions (flags 0 and 1) read as before.
 * @module
 */
import type { LogEntry } from "./port.ts";
import type { UserProperties } from "../../actors/user_properties.ts";

/** Most bytes packed into one record (Deno KV values are limited to 64 KiB). */
export const RECORD_BYTES = 60_000;

/** Fixed bytes per entry in a record (without, with keys). */
const HEAD = 22;
const KEYED_HEAD = 30;
const KEYED = 1;
const PROPS = 2;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Entries packed into one record. */
export interface PackedRecord {
  /** Sequences of its entries, ascending (the first is the record's key). */
  seqs: number[];
  bytes: Uint8Array;
}

/** An entry's user properties as stored: count, then name and value of each pair. */
function encodeProps(props: UserProperties): Uint8Array {
  const parts = props.map(([n, v]) => [enc.encode(n), enc.encode(v)]);
  let size = 1;
  for (const [n, v] of parts) size += 3 + n.byteLength + v.byteLength;
  const out = new Uint8Array(size);
  out[0] = parts.length;
  let o = 1;
  for (const [n, v] of parts) {
    out[o] = n.byteLength;
    out.set(n, o + 1);
    o += 1 + n.byteLength;
    out[o] = v.byteLength >> 8;
    out[o + 1] = v.byteLength & 0xff;
    out.set(v, o + 2);
    o += 2 + v.byteLength;
  }
  return out;
}

/** The user properties stored at `o` in `bytes`, and where they end. */
function decodeProps(bytes: Uint8Array, o: number): [UserProperties | undefined, number] {
  const count = bytes[o++];
  if (count === 0) return [undefined, o];
  const out: Array<readonly [string, string]> = [];
  for (let i = 0; i < count; i++) {
    const nl = bytes[o];
    const name = dec.decode(bytes.subarray(o + 1, o + 1 + nl));
    o += 1 + nl;
    const vl = (bytes[o] << 8) | bytes[o + 1];
    out.push([name, dec.decode(bytes.subarray(o + 2, o + 2 + vl))]);
    o += 2 + vl;
  }
  return [out, o];
}

interface Packing {
  e: LogEntry;
  topic: Uint8Array;
  props?: Uint8Array;
}

/** A record being filled: its entries and what its size depends on. */
class Group {
  items: Packing[] = [];
  /** Bytes without key slots and without the count byte of entries with no properties. */
  base = 1;
  keyed = false;
  /** Entries with properties. */
  withProps = 0;

  /** The record's size with `p` added (when given). */
  size(p?: Packing, n = 0): number {
    const count = this.items.length + (p ? 1 : 0);
    const keyed = this.keyed || p?.e.key !== undefined;
    const withProps = this.withProps + (p?.props ? 1 : 0);
    return this.base + n + (keyed ? (KEYED_HEAD - HEAD) * count : 0) +
      (withProps > 0 ? count - withProps : 0);
  }

  add(p: Packing, n: number): void {
    this.items.push(p);
    this.base += n;
    this.keyed ||= p.e.key !== undefined;
    if (p.props) this.withProps++;
  }
}

/** The record of a group's entries. */
function pack(g: Group): PackedRecord {
  const head = g.keyed ? KEYED_HEAD : HEAD;
  const withProps = g.withProps > 0;
  const bytes = new Uint8Array(g.size());
  const view = new DataView(bytes.buffer);
  bytes[0] = (g.keyed ? KEYED : 0) | (withProps ? PROPS : 0);
  let o = 1;
  for (const { e, topic, props } of g.items) {
    view.setFloat64(o, e.seq);
    view.setFloat64(o + 8, e.at);
    if (g.keyed) view.setFloat64(o + 16, e.key ?? NaN);
    view.setUint16(o + head - 6, topic.byteLength);
    view.setUint32(o + head - 4, e.payload.byteLength);
    bytes.set(topic, o + head);
    bytes.set(e.payload, o + head + topic.byteLength);
    o += head + topic.byteLength + e.payload.byteLength;
    if (props) bytes.set(props, o);
    if (withProps) o += props?.byteLength ?? 1; // (a bare entry's count byte stays 0)
  }
  return { seqs: g.items.map((i) => i.e.seq), bytes };
}

/** Packs `entries` (sequences increasing) into records. */
export function packRecords(entries: LogEntry[]): PackedRecord[] {
  const out: PackedRecord[] = [];
  let group = new Group();
  for (const e of entries) {
    const p: Packing = { e, topic: enc.encode(e.topic) };
    if (e.props && e.props.length > 0) p.props = encodeProps(e.props);
    const n = HEAD + p.topic.byteLength + e.payload.byteLength + (p.props?.byteLength ?? 0);
    if (group.items.length > 0 && group.size(p, n) > RECORD_BYTES) {
      out.push(pack(group));
      group = new Group();
    }
    group.add(p, n);
  }
  if (group.items.length > 0) out.push(pack(group));
  return out;
}

/** True when `bytes` is a packed record (not a legacy one-entry value). */
export function isRecord(bytes: Uint8Array): boolean {
  return bytes.byteLength > 0 && bytes[0] <= (KEYED | PROPS);
}

/** The entries of a packed record, in order. */
export function unpackRecord(bytes: Uint8Array): LogEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const keyed = (bytes[0] & KEYED) !== 0;
  const withProps = (bytes[0] & PROPS) !== 0;
  const head = keyed ? KEYED_HEAD : HEAD;
  const out: LogEntry[] = [];
  for (let o = 1; o < bytes.byteLength;) {
    const topicLen = view.getUint16(o + head - 6);
    const payloadLen = view.getUint32(o + head - 4);
    const t = o + head;
    const e: LogEntry = {
      seq: view.getFloat64(o),
      topic: dec.decode(bytes.subarray(t, t + topicLen)),
      payload: bytes.slice(t + topicLen, t + topicLen + payloadLen),
      at: view.getFloat64(o + 8),
    };
    const key = keyed ? view.getFloat64(o + 16) : NaN;
    if (!Number.isNaN(key)) e.key = key;
    o = t + topicLen + payloadLen;
    if (withProps) {
      const [props, end] = decodeProps(bytes, o);
      if (props) e.props = props;
      o = end;
    }
    out.push(e);
  }
  return out;
}

/** A stored record not yet wholly retired. */
interface Live {
  key: number;
  seqs: number[];
  /** Bit i set = entry i retired. */
  retired: Uint8Array;
  left: number;
  /** Parts the record's value is split into (0: one value). */
  parts: number;
  /** A retired-bitmap is stored for it. */
  marked: boolean;
}

/** What one `retire` call changes in the store. */
export interface RetireChanges {
  /** Wholly retired records: delete the record (its parts, its bitmap). */
  deleted: Array<{ key: number; parts: number; marked: boolean }>;
  /** Partly retired records: store this bitmap beside the record. */
  marks: Array<{ key: number; retired: Uint8Array }>;
  /** Sequences not in any known record (legacy one-entry values, or unknown). */
  other: number[];
  /** Puts the retired entries back (the store refused the changes). */
  undo(): void;
}

/** The unretired entries of the stored records, by sequence. */
export class RecordIndex {
  readonly #bySeq = new Map<number, Live>();

  /** A record was stored (or found by a replay with `retired` as its stored bitmap). */
  add(seqs: number[], parts: number, retired?: Uint8Array): void {
    const bits = new Uint8Array(Math.ceil(seqs.length / 8));
    if (retired) bits.set(retired.subarray(0, bits.byteLength));
    const rec: Live = { key: seqs[0], seqs, retired: bits, left: 0, parts, marked: !!retired };
    for (let i = 0; i < seqs.length; i++) {
      if (isSet(bits, i)) continue;
      rec.left++;
      this.#bySeq.set(seqs[i], rec);
    }
  }

  /** True when entry `i` of a record with bitmap `retired` is retired. */
  static retired(retired: Uint8Array | undefined, i: number): boolean {
    return retired !== undefined && isSet(retired, i);
  }

  /** Marks `seqs` retired; returns what to change in the store. */
  retire(seqs: number[]): RetireChanges {
    const touched = new Map<Live, boolean>();
    const taken: Array<[number, Live]> = [];
    const other: number[] = [];
    for (const s of seqs) {
      const rec = this.#bySeq.get(s);
      if (!rec) {
        other.push(s);
        continue;
      }
      this.#bySeq.delete(s);
      taken.push([s, rec]);
      const i = indexOf(rec.seqs, s);
      rec.retired[i >> 3] |= 1 << (i & 7);
      rec.left--;
      if (!touched.has(rec)) touched.set(rec, rec.marked);
    }
    const undo = () => {
      for (const [rec, marked] of touched) rec.marked = marked;
      for (const [s, rec] of taken) {
        const i = indexOf(rec.seqs, s);
        rec.retired[i >> 3] &= ~(1 << (i & 7));
        rec.left++;
        this.#bySeq.set(s, rec);
      }
    };
    const changes: RetireChanges = { deleted: [], marks: [], other, undo };
    for (const rec of touched.keys()) {
      if (rec.left === 0) {
        changes.deleted.push({ key: rec.key, parts: rec.parts, marked: rec.marked });
      } else {
        rec.marked = true;
        changes.marks.push({ key: rec.key, retired: rec.retired.slice() });
      }
    }
    return changes;
  }
}

function isSet(bits: Uint8Array, i: number): boolean {
  return (bits[i >> 3] & (1 << (i & 7))) !== 0;
}

/** Index of `s` in the ascending `seqs` (present). */
function indexOf(seqs: number[], s: number): number {
  let lo = 0;
  let hi = seqs.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (seqs[mid] < s) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
