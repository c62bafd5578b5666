/**
 * Deno KV persistence adapter (single node; a file under the data dir).
 *
 * Keys: `["twin", id]` snapshot, `["log", seq]` inbound log record (entries packed from `seq`
 * on, see `log_records.ts`; a value of an earlier version holds one entry),
 * `["logr", seq]` which entries of a partly retired record are retired, `["meta", "seq"]`
 * high-water mark. Deno KV values are limited to 64 KiB, so larger values are split into parts under
 * `["part", kind, key, i]`; an atomic operation holds at most 1000 mutations and 800 KiB, so
 * batches are split into several atomic commits that run in parallel.
 * @module
 */
import type { InboundLog, LogEntry, Persistence, SnapshotStore } from "./port.ts";
import type { TwinRecord } from "../../actors/twin.ts";
import { isRecord, packRecords, RecordIndex, unpackRecord } from "./log_records.ts";

const PART = 60_000;
const MAX_MUTATIONS = 900;
const MAX_BYTES = 700_000;

type Stored = Uint8Array | { parts: number };

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Open (or create) a Deno KV persistence at `path`. */
export async function denoKvPersistence(path: string): Promise<Persistence> {
  const kv = await Deno.openKv(path);

  async function getBytes(key: Deno.KvKey, v: Stored | null): Promise<Uint8Array | null> {
    if (v === null) return null;
    if (v instanceof Uint8Array) return v;
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < v.parts; i++) {
      const p = await kv.get<Uint8Array>(["part", ...key, i]);
      if (!p.value) throw new Error(`Cannot read ${JSON.stringify(key)}: part ${i} is missing`);
      chunks.push(p.value);
    }
    const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
    let o = 0;
    for (const c of chunks) out.set(c, (o += c.byteLength) - c.byteLength);
    return out;
  }

  /** Mutations to store `bytes` at `key` (split when large). */
  function putOps(key: Deno.KvKey, bytes: Uint8Array): Array<[Deno.KvKey, unknown]> {
    if (bytes.byteLength <= PART) return [[key, bytes]];
    const ops: Array<[Deno.KvKey, unknown]> = [];
    let i = 0;
    for (let o = 0; o < bytes.byteLength; o += PART, i++) {
      ops.push([["part", ...key, i], bytes.subarray(o, o + PART)]);
    }
    ops.push([key, { parts: i }]);
    return ops;
  }

  /** Commit sets/deletes in as few atomic operations as the limits allow, in parallel. */
  async function commit(
    ops: Array<[Deno.KvKey, unknown | undefined]>,
    extra?: [Deno.KvKey, unknown],
  ) {
    const batches: Array<typeof ops> = [];
    let cur: typeof ops = [];
    let bytes = 0;
    for (const op of ops) {
      const size = op[1] instanceof Uint8Array ? op[1].byteLength : 64;
      if (cur.length >= MAX_MUTATIONS || bytes + size > MAX_BYTES) {
        batches.push(cur);
        cur = [];
        bytes = 0;
      }
      cur.push(op);
      bytes += size;
    }
    if (cur.length) batches.push(cur);
    await Promise.all(batches.map(async (b) => {
      const a = kv.atomic();
      for (const [k, v] of b) v === undefined ? a.delete(k) : a.set(k, v);
      if (extra) a.set(extra[0], extra[1]);
      const r = await a.commit();
      if (!r.ok) throw new Error("Deno KV atomic commit failed");
    }));
  }

  const snapshots: SnapshotStore = {
    async load(id) {
      const key = ["twin", id];
      const b = await getBytes(key, (await kv.get<Stored>(key)).value);
      return b ? JSON.parse(dec.decode(b)) as TwinRecord : null;
    },
    async saveMany(records) {
      const ops: Array<[Deno.KvKey, unknown]> = [];
      for (const r of records) {
        ops.push(...putOps(["twin", r.state.id], enc.encode(JSON.stringify(r))));
      }
      await commit(ops);
    },
    async list(after, limit) {
      const sel = after === undefined
        ? { prefix: ["twin"] }
        : { prefix: ["twin"], start: ["twin", after + "\0"] };
      const out: TwinRecord[] = [];
      for await (const e of kv.list<Stored>(sel, { limit, batchSize: Math.min(limit, 500) })) {
        const b = await getBytes(e.key, e.value);
        if (b) out.push(JSON.parse(dec.decode(b)));
      }
      return out;
    },
  };

  /** Unretired entries of the stored records. */
  const records = new RecordIndex();
  /** One-entry values of an earlier version found by a replay: seq -> part count. */
  const legacy = new Map<number, number>();
  /** Retires run one at a time (a record's bitmap is rewritten by each). */
  let retiring: Promise<void> = Promise.resolve();

  async function retireNow(seqs: number[]): Promise<void> {
    const changes = records.retire(seqs);
    const ops: Array<[Deno.KvKey, unknown | undefined]> = [];
    for (const d of changes.deleted) {
      ops.push([["log", d.key], undefined]);
      if (d.marked) ops.push([["logr", d.key], undefined]);
      for (let i = 0; i < d.parts; i++) ops.push([["part", "log", d.key, i], undefined]);
    }
    for (const m of changes.marks) ops.push([["logr", m.key], m.retired]);
    const old: Array<[number, number]> = [];
    for (const s of changes.other) {
      const parts = legacy.get(s);
      if (parts === undefined) continue; // unknown: nothing stored under it
      legacy.delete(s);
      old.push([s, parts]);
      ops.push([["log", s], undefined]);
      for (let i = 0; i < parts; i++) ops.push([["part", "log", s, i], undefined]);
    }
    try {
      await commit(ops);
    } catch (err) {
      changes.undo();
      for (const [s, parts] of old) legacy.set(s, parts);
      throw err;
    }
  }

  const log: InboundLog = {
    async append(entries) {
      if (entries.length === 0) return;
      const ops: Array<[Deno.KvKey, unknown]> = [];
      const packed = packRecords(entries);
      const parts: number[] = [];
      for (const r of packed) {
        const put = putOps(["log", r.seqs[0]], r.bytes);
        parts.push(put.length - 1);
        ops.push(...put);
      }
      const last = entries[entries.length - 1].seq;
      await commit(ops, [["meta", "seq"], new Deno.KvU64(BigInt(last))]);
      for (let i = 0; i < packed.length; i++) records.add(packed[i].seqs, parts[i]);
    },
    retire(seqs) {
      const done = retiring.then(() => retireNow(seqs));
      retiring = done.catch(() => {});
      return done;
    },
    async *replay() {
      const marks = new Map<number, Uint8Array>();
      for await (const e of kv.list<Uint8Array>({ prefix: ["logr"] }, { batchSize: 500 })) {
        marks.set(e.key[1] as number, e.value);
      }
      for await (const e of kv.list<Stored>({ prefix: ["log"] }, { batchSize: 500 })) {
        const b = await getBytes(e.key, e.value);
        if (!b) continue;
        const key = e.key[1] as number;
        const parts = e.value instanceof Uint8Array ? 0 : e.value.parts;
        if (isRecord(b)) {
          const entries = unpackRecord(b);
          const retired = marks.get(key);
          records.add(entries.map((x) => x.seq), parts, retired);
          for (let i = 0; i < entries.length; i++) {
            if (!RecordIndex.retired(retired, i)) yield entries[i];
          }
          continue;
        }
        legacy.set(key, parts);
        const nl = b.indexOf(10);
        const head = JSON.parse(dec.decode(b.subarray(0, nl)));
        yield { seq: key, topic: head.t, at: head.a, payload: b.slice(nl + 1) } as LogEntry;
      }
    },
    async lastSeq() {
      const v = (await kv.get<Deno.KvU64>(["meta", "seq"])).value;
      return v ? Number(v.value) : 0;
    },
  };

  return {
    snapshots,
    log,
    [Symbol.asyncDispose]: () => Promise.resolve(kv.close()),
  };
}
