/**
 * Where firmware image bytes live: one port, three adapters — memory (unit tests), a directory
 * under the data dir (single node) and a JetStream object store bucket (cluster mode: every
 * node reads what any node wrote). Blobs are written once under a fresh key and read by byte
 * range as a stream; nothing ever holds a whole image in memory (except the memory adapter).
 *
 * Object store ranges: `@nats-io/obj` stores an object as chunks of one size (the last one
 * shorter) on subject `$O.{bucket}.C.{nuid}`, and its own `get` streams every chunk from the
 * first through a consumer. A range instead reads chunk by chunk with direct gets
 * (`next_by_subj`), starting at the chunk that holds the first byte: when the object's chunks
 * sit at consecutive stream sequences (one upload at a time, the usual case) chunk `k` is at
 * `first + k`; when another upload interleaved, the chunks before `k` are walked once.
 * @module
 */
import { rename } from "node:fs/promises";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { JetStreamApiError, jetstreamManager, type StoredMsg } from "@nats-io/jetstream";
import { type ObjectInfo, type ObjectStore, Objm, StorageType } from "@nats-io/obj";

/** A blob as listed (to sweep the ones no image refers to). */
export interface BlobInfo {
  key: string;
  size: number;
  /** Last modification, ms since the epoch. */
  mtime: number;
}

/** Image bytes by key. Keys: 1–200 of `A-Z a-z 0-9 _ - .`, chosen by the caller, written once. */
export interface BlobStore extends AsyncDisposable {
  /**
   * Store `data` under `key`; resolves with its size once it is durable. When `data` errors,
   * nothing is kept and the promise rejects with that error.
   */
  put(key: string, data: ReadableStream<Uint8Array>): Promise<number>;
  /** Bytes `start..end` (inclusive) of `key` as a stream, or null when there is no such blob. */
  read(key: string, start: number, end: number): Promise<ReadableStream<Uint8Array> | null>;
  /** True if it existed. */
  delete(key: string): Promise<boolean>;
  /** Every blob (at most some thousands). */
  list(): Promise<BlobInfo[]>;
}

const KEY_RE = /^[A-Za-z0-9_.-]{1,200}$/;

function checkKey(key: string): void {
  if (!KEY_RE.test(key) || key.startsWith(".")) throw new Error(`Bad blob key "${key}"`);
}

/** A blob ended before the requested range did (a file cut short, chunks gone). */
export class BlobTruncatedError extends Error {
  override name = "BlobTruncatedError";
  constructor(key: string, at: number) {
    super(`Blob "${key}" ends early, at byte ${at}`);
  }
}

/** Blobs in memory (unit tests). */
export function memoryBlobStore(): BlobStore & { blobs: Map<string, Uint8Array> } {
  const blobs = new Map<string, Uint8Array>();
  const mtimes = new Map<string, number>();
  return {
    blobs,
    async put(key, data) {
      checkKey(key);
      const parts: Uint8Array[] = [];
      for await (const p of data) parts.push(p);
      const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) all.set(p, (at += p.length) - p.length);
      blobs.set(key, all);
      mtimes.set(key, Date.now());
      return all.length;
    },
    read(key, start, end) {
      const b = blobs.get(key);
      if (!b) return Promise.resolve(null);
      const slice = b.slice(start, end + 1);
      return Promise.resolve(
        new ReadableStream({
          start(c) {
            if (slice.length > 0) c.enqueue(slice);
            if (end >= b.length) c.error(new BlobTruncatedError(key, b.length));
            else c.close();
          },
        }),
      );
    },
    delete(key) {
      mtimes.delete(key);
      return Promise.resolve(blobs.delete(key));
    },
    list() {
      return Promise.resolve(
        [...blobs].map(([key, b]) => ({ key, size: b.length, mtime: mtimes.get(key)! })),
      );
    },
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}

/** Read `n` bytes at most per file read. */
const READ_SIZE = 64 * 1024;

/**
 * Blobs as files in `dir` (created if missing). A blob is written to `{key}.part`, synced, then
 * renamed, so a crash never leaves a complete-looking file; `list` shows `.part` files too
 * (a sweep removes the old ones).
 */
export async function directoryBlobStore(dir: string): Promise<BlobStore> {
  await Deno.mkdir(dir, { recursive: true });
  return {
    async put(key, data) {
      checkKey(key);
      const part = join(dir, `${key}.part`);
      const f = await Deno.open(part, { write: true, createNew: true });
      let size = 0;
      try {
        for await (const chunk of data) {
          for (let off = 0; off < chunk.length;) off += await f.write(chunk.subarray(off));
          size += chunk.length;
        }
        await f.syncData();
      } catch (err) {
        f.close();
        await Deno.remove(part).catch(() => {});
        throw err;
      }
      f.close();
      await rename(part, join(dir, key));
      return size;
    },
    async read(key, start, end) {
      checkKey(key);
      let f: Deno.FsFile;
      try {
        f = await Deno.open(join(dir, key), { read: true });
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) return null;
        throw err;
      }
      await f.seek(start, Deno.SeekMode.Start);
      let at = start;
      let open = true;
      const close = () => {
        if (open) f.close();
        open = false;
      };
      return new ReadableStream<Uint8Array>({
        async pull(c) {
          try {
            const buf = new Uint8Array(Math.min(READ_SIZE, end + 1 - at));
            const n = await f.read(buf);
            if (n === null) throw new BlobTruncatedError(key, at);
            at += n;
            c.enqueue(n === buf.length ? buf : buf.subarray(0, n));
            if (at > end) {
              close();
              c.close();
            }
          } catch (err) {
            close();
            c.error(err);
          }
        },
        cancel: close,
      }, { highWaterMark: 0 });
    },
    async delete(key) {
      checkKey(key);
      try {
        await Deno.remove(join(dir, key));
        return true;
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) return false;
        throw err;
      }
    },
    async list() {
      const out: BlobInfo[] = [];
      for await (const e of Deno.readDir(dir)) {
        if (!e.isFile || out.length >= 100_000) continue;
        const st = await Deno.stat(join(dir, e.name)).catch(() => null);
        if (st) out.push({ key: e.name, size: st.size, mtime: st.mtime?.getTime() ?? 0 });
      }
      return out;
    },
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}

/** "subjects overlap with an existing stream", "stream name already in use". */
const CREATE_RACE = new Set([10065, 10058]);

/** Options of {@linkcode objectBlobStore}. */
export interface ObjectBlobStoreOptions {
  /** Bucket name; default `tm_firmware` (stream `OBJ_tm_firmware`). */
  bucket?: string;
  replicas?: number;
  /** Chunk size in bytes (clamped to the server's max payload); default 128 KiB. */
  chunkSize?: number;
}

/**
 * Blobs in a JetStream object store bucket (cluster mode). The store does not own the
 * connection. Opening tolerates another node creating the bucket at the same moment.
 */
export async function objectBlobStore(
  nc: NatsConnection,
  opts: ObjectBlobStoreOptions = {},
): Promise<BlobStore> {
  const bucket = opts.bucket ?? "tm_firmware";
  const stream = `OBJ_${bucket}`;
  const objm = new Objm(nc);
  let os: ObjectStore;
  for (let attempt = 1;; attempt++) {
    try {
      os = await objm.create(bucket, {
        replicas: opts.replicas ?? 1,
        storage: StorageType.File,
      });
      break;
    } catch (err) {
      const raced = err instanceof JetStreamApiError && CREATE_RACE.has(err.code);
      if (!raced || attempt === 3) throw err;
    }
  }
  const jsm = await jetstreamManager(nc);
  const chunkSize = opts.chunkSize ?? 128 * 1024;

  /** The chunk on `subj` at or after stream sequence `seq`: a replica, else the leader. */
  const nextChunk = async (subj: string, seq: number): Promise<StoredMsg | null> => {
    const m = await jsm.direct.getMessage(stream, { next_by_subj: subj, seq });
    if (m) return m;
    // a replica that has not caught up yet holds a prefix of the stream: ask the leader
    try {
      // deno-lint-ignore no-explicit-any
      return await jsm.streams.getMessage(stream, { next_by_subj: subj, seq } as any);
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === 10037) return null; // no message
      throw err;
    }
  };

  /** Stream sequence of chunk `k` of `info`, and the sequence to look from for the next. */
  const seqOfChunk = async (info: ObjectInfo, k: number): Promise<number> => {
    const subj = `$O.${bucket}.C.${info.nuid}`;
    const first = await nextChunk(subj, 1);
    if (!first) throw new BlobTruncatedError(info.name, 0);
    if (k === 0) return first.seq;
    const last = await jsm.streams.getMessage(stream, { last_by_subj: subj });
    if (last && last.seq - first.seq + 1 === info.chunks) return first.seq + k;
    // interleaved with another upload: walk to chunk k
    let seq = first.seq;
    for (let i = 0; i < k; i++) {
      const m = await nextChunk(subj, seq + 1);
      if (!m) throw new BlobTruncatedError(info.name, i * chunkSizeOf(info));
      seq = m.seq;
    }
    return seq;
  };

  const chunkSizeOf = (info: ObjectInfo) => info.options?.max_chunk_size ?? chunkSize;

  return {
    async put(key, data) {
      checkKey(key);
      const info = await os.put({ name: key, options: { max_chunk_size: chunkSize } }, data);
      return info.size;
    },
    async read(key, start, end) {
      checkKey(key);
      const info = await os.info(key);
      if (!info || info.deleted) return null;
      if (end >= info.size) throw new BlobTruncatedError(key, info.size);
      const size = chunkSizeOf(info);
      const subj = `$O.${bucket}.C.${info.nuid}`;
      let k = Math.floor(start / size); // the chunk holding byte `at`
      let at = start;
      let seq = 0; // stream sequence to look for chunk k from
      return new ReadableStream<Uint8Array>({
        async pull(c) {
          try {
            if (seq === 0) seq = await seqOfChunk(info, k);
            const m = await nextChunk(subj, seq);
            if (!m) throw new BlobTruncatedError(key, at);
            const from = at - k * size;
            const to = Math.min(m.data.length, end + 1 - k * size);
            if (from >= to) throw new BlobTruncatedError(key, at);
            c.enqueue(m.data.subarray(from, to));
            at += to - from;
            k++;
            seq = m.seq + 1;
            if (at > end) c.close();
          } catch (err) {
            c.error(err);
          }
        },
      }, { highWaterMark: 0 });
    },
    async delete(key) {
      checkKey(key);
      const info = await os.info(key);
      if (!info || info.deleted) return false;
      await os.delete(key);
      return true;
    },
    async list() {
      const all = await os.list();
      return all.filter((i) => !i.deleted).map((i) => ({
        key: i.name,
        size: i.size,
        mtime: Date.parse(i.mtime),
      }));
    },
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}
