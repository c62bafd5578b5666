/**
 * Firmware image bytes in a JetStream object store bucket (cluster mode: every node reads what
 * any node wrote).
 *
 * Object store ranges: `@nats-io/obj` stores an object as chunks of one size (the last one
 * shorter) on subject `$O.{bucket}.C.{nuid}`, and its own `get` streams every chunk from the
 * first through a consumer. A range instead reads chunk by chunk with direct gets
 * (`next_by_subj`), starting at the chunk that holds the first byte: when the object's chunks
 * sit at consecutive stream sequences (one upload at a time, the usual case) chunk `k` is at
 * `first + k`; when another upload interleaved, the chunks before `k` are walked once.
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { JetStreamApiError, jetstreamManager, type StoredMsg } from "@nats-io/jetstream";
import { type ObjectInfo, type ObjectStore, Objm, StorageType } from "@nats-io/obj";
import { type BlobStore, BlobTruncatedError, checkKey } from "./firmware_blobs.ts";

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
