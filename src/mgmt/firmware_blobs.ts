/**
 * Where firmware image bytes live: one port, three adapters — memory (unit tests), a directory
 * under the data dir (single node) and a JetStream object store bucket (cluster mode: every
 * node reads what any node wrote). Blobs are written once under a fresh key and read by byte
 * range as a stream; nothing ever holds a whole image in memory (except the memory adapter).
 *
 * This module holds the port and the memory adapter; the directory adapter is in
 * `firmware_blobs_dir.ts`, the object store adapter in `firmware_blobs_object.ts`.
 * @module
 */
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

/** Throws unless `key` is a valid blob key. */
export function checkKey(key: string): void {
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
