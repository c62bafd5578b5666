/**
 * The audit log: who did what to which target, and whether it was allowed. Callers enqueue
 * synchronously and are never blocked; one writer loop appends JSON lines in batches to
 * `audit.log`, rotating it to `audit.log.1` (one old file kept). A full queue drops entries
 * and counts them. Detail keys that name secrets are stored as `"[redacted]"`.
 * @module
 */

import type { DenialGate } from "./audit_gate.ts";
import {
  type AuditEntry,
  type AuditInput,
  type AuditQuery,
  isTime,
  matches,
  parseLine,
  toEntry,
} from "./audit_entry.ts";
import { endsWithNewline, lines, Newest, openIfExists } from "./audit_read.ts";

/** Options of {@linkcode AuditLog.open}. */
export interface AuditLogOptions {
  /** Rotate `audit.log` to `audit.log.1` before it would grow past this; default 64 MiB. */
  maxBytes?: number;
  /** Most entries waiting to be written; more are dropped and counted. Default 10 000. */
  maxQueue?: number;
  /** Clock for entries recorded without `ts`; default `Date.now`. */
  now?: () => number;
}
const MAX_BATCH = 4096;

const positiveInt = (name: string, v: number) => {
  if (!Number.isSafeInteger(v) || v < 1) {
    throw new RangeError(`Cannot open audit log: ${name} must be a positive integer, not ${v}`);
  }
  return v;
};

/**
 * Append-only audit log in a directory (`audit.log` and, after rotation, `audit.log.1`).
 * One instance per directory: rotation is coordinated only within the process.
 * @example
 * ```ts
 * await using audit = await AuditLog.open("data/audit");
 * audit.record({ actor: "jwt:alice", role: "admin", action: "credential.revoke",
 *   target: "press-7", result: "ok" });
 * const recent = await audit.query({ action: "credential.", limit: 50 });
 * ```
 */
export class AuditLog implements AsyncDisposable {
  /** Entries not stored: queue full, recorded after close, not an entry, or a failed write. */
  dropped = 0;
  /** Entries appended to the file. */
  written = 0;
  /** The last write error (its entries are counted in `dropped`); the next batch reopens. */
  lastError: unknown = undefined;

  readonly #path: string;
  readonly #maxBytes: number;
  readonly #maxQueue: number;
  readonly #now: () => number;
  readonly #encoder = new TextEncoder();
  #file: Deno.FsFile | null;
  #size: number;
  #queue: string[] = [];
  #running = false;
  #enqueued = 0;
  #settled = 0;
  #waiters: Array<{ upTo: number; resolve: () => void }> = [];
  #rotations = 0;
  /** Settles when the rotation under way has renamed the file. */
  #rotating: Promise<void> | null = null;
  #closing: Promise<void> | null = null;

  private constructor(path: string, file: Deno.FsFile, size: number, opts: AuditLogOptions) {
    this.#path = path;
    this.#file = file;
    this.#size = size;
    this.#maxBytes = positiveInt("maxBytes", opts.maxBytes ?? 64 * 1024 * 1024);
    this.#maxQueue = positiveInt("maxQueue", opts.maxQueue ?? 10_000);
    this.#now = opts.now ?? Date.now;
  }

  /** Open (creating `dir` if needed) and append to `${dir}/audit.log`. */
  static async open(dir: string, opts: AuditLogOptions = {}): Promise<AuditLog> {
    positiveInt("maxBytes", opts.maxBytes ?? 1);
    positiveInt("maxQueue", opts.maxQueue ?? 1);
    await Deno.mkdir(dir, { recursive: true });
    const path = `${dir}/audit.log`;
    const file = await Deno.open(path, { append: true, create: true });
    try {
      let size = (await file.stat()).size;
      if (size > 0 && !(await endsWithNewline(path, size))) {
        // a torn last line (crash mid-write) must not swallow the next entry
        size += await file.write(new Uint8Array([10]));
      }
      return new AuditLog(path, file, size, opts);
    } catch (err) {
      file.close();
      throw err;
    }
  }

  /** Bounds the entries of refusals (see {@linkcode DenialGate}); none by default. */
  gate?: DenialGate;

  /**
   * Enqueue an entry (never blocks, never throws), through {@linkcode gate} when set; dropped
   * and counted when the queue is full.
   */
  record(e: AuditInput): void {
    if (!this.gate) return this.#enqueue(e);
    for (const x of this.gate.admit(e)) this.#enqueue(x);
  }

  #enqueue(e: AuditInput): void {
    if (this.#closing !== null || this.#queue.length >= this.#maxQueue) {
      this.dropped++;
      return;
    }
    let line: string;
    try {
      const entry = toEntry(e, isTime(e.ts) ? e.ts : this.#now());
      if (entry === undefined) throw new TypeError("not an audit entry");
      line = JSON.stringify(entry) + "\n";
    } catch {
      this.dropped++;
      return;
    }
    this.#queue.push(line);
    this.#enqueued++;
    if (!this.#running) {
      this.#running = true;
      this.#drain();
    }
  }

  /** Resolves once every entry recorded before the call is written (or counted as dropped). */
  flush(): Promise<void> {
    const upTo = this.#enqueued;
    if (this.#settled >= upTo) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ upTo, resolve }));
  }

  /** The newest `limit` entries matching `q`, newest first, from both files (after a flush). */
  async query(q: AuditQuery): Promise<AuditEntry[]> {
    await this.flush();
    if (!(q.limit >= 1)) return [];
    const files = await this.#openBoth();
    try {
      const newest = new Newest(Math.floor(q.limit));
      for (const file of files) {
        if (file === null) continue;
        for await (const line of lines(file)) {
          const e = parseLine(line);
          if (e !== undefined && matches(e, q)) newest.add(e);
        }
      }
      return newest.result();
    } finally {
      for (const f of files) f?.close();
    }
  }

  /**
   * `audit.log.1` and `audit.log` opened with no rotation in between, so together they hold
   * every retained entry once. Once open, a later rotation only renames or unlinks them.
   */
  async #openBoth(): Promise<[Deno.FsFile | null, Deno.FsFile | null]> {
    for (;;) {
      while (this.#rotating !== null) await this.#rotating;
      const rotations = this.#rotations;
      const old = await openIfExists(`${this.#path}.1`);
      let cur: Deno.FsFile | null = null;
      try {
        cur = await openIfExists(this.#path);
      } catch (err) {
        old?.close();
        throw err;
      }
      if (rotations === this.#rotations && this.#rotating === null) return [old, cur];
      old?.close();
      cur?.close();
    }
  }

  /** Flush, then close the file; later records are dropped. */
  close(): Promise<void> {
    this.#closing ??= this.flush().then(() => this.#closeFile());
    return this.#closing;
  }

  /** Same as {@linkcode close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #drain() {
    try {
      await Promise.resolve(); // let a synchronous burst of records share the first batch
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, MAX_BATCH);
        const before = this.written;
        try {
          await this.#append(batch);
        } catch (err) {
          this.lastError = err;
          this.dropped += batch.length - (this.written - before);
          this.#closeFile();
        }
        this.#settled += batch.length;
        const waiting = this.#waiters;
        this.#waiters = waiting.filter((w) => w.upTo > this.#settled);
        for (const w of waiting) if (w.upTo <= this.#settled) w.resolve();
      }
    } finally {
      this.#running = false;
    }
  }

  /** Append lines, rotating first whenever the next line would take the file past maxBytes. */
  async #append(batch: string[]) {
    let chunk: Uint8Array[] = [];
    let bytes = 0;
    for (const line of batch) {
      const b = this.#encoder.encode(line);
      if (this.#size + bytes + b.length > this.#maxBytes && this.#size + bytes > 0) {
        if (chunk.length > 0) await this.#write(chunk, bytes);
        chunk = [];
        bytes = 0;
        await this.#rotate();
      }
      chunk.push(b);
      bytes += b.length;
    }
    if (chunk.length > 0) await this.#write(chunk, bytes);
  }

  async #write(chunk: Uint8Array[], bytes: number) {
    if (this.#file === null) {
      this.#file = await Deno.open(this.#path, { append: true, create: true });
      this.#size = (await this.#file.stat()).size;
    }
    const buf = new Uint8Array(bytes);
    let at = 0;
    for (const b of chunk) {
      buf.set(b, at);
      at += b.length;
    }
    for (let off = 0; off < buf.length;) off += await this.#file.write(buf.subarray(off));
    this.#size += bytes;
    this.written += chunk.length;
  }

  async #rotate() {
    this.#closeFile();
    this.#rotations++;
    const rename = Deno.rename(this.#path, `${this.#path}.1`).catch((err) => {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    });
    this.#rotating = rename.catch(() => {});
    try {
      await rename;
    } finally {
      this.#rotating = null;
    }
    this.#size = 0;
  }

  #closeFile() {
    try {
      this.#file?.close();
    } catch { /* already closed */ }
    this.#file = null;
  }
}
