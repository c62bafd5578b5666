/**
 * Batched, acknowledged writer of points to InfluxDB (v1 `/write` or v2 `/api/v2/write`).
 *
 * Why hand-written rather than npm:@influxdata/influxdb-client's WriteApi: ingest retires an
 * entry from its durable inbound log only once the point is in InfluxDB, so every `write()`
 * here returns a promise that settles when InfluxDB accepted (or definitively refused) that
 * very point; WriteApi only reports per batch through callbacks and, when InfluxDB is down,
 * silently drops the oldest points of its bounded retry buffer. We need the opposite: a
 * bounded buffer that pushes back on the caller (`full` / `whenSpace()`) and never loses a
 * point, with one request in flight at a time so order and memory stay bounded.
 * @module
 */
import type { Logger } from "../obs/log.ts";
import type { Metrics } from "../obs/metrics.ts";
import { type Point, toLineProtocol } from "./line_protocol.ts";

export type { Point };

/** Options of {@linkcode InfluxWriter}. */
export interface InfluxWriterOptions {
  /** Base URL of InfluxDB, e.g. `http://127.0.0.1:8086`. */
  url: string;
  /** `v1` = `POST /write?db=` (InfluxDB 1.x); `v2` = `POST /api/v2/write?org=&bucket=`. */
  api: "v1" | "v2";
  /** v1 database, created if missing (default `"twinmill"`). */
  db?: string;
  /** Sent as `Authorization: Token <token>` (v2 token, or `user:password` on InfluxDB 1.8+). */
  token?: string;
  /** v2 organisation. */
  org?: string;
  /** v2 bucket. */
  bucket?: string;
  /** Points per request (default 5000). */
  batchSize?: number;
  /** Longest time a point waits for its batch to fill (default 100 ms). */
  flushIntervalMs?: number;
  /** Points buffered before `full` asks the caller to hold back (default 200 000). */
  maxBuffer?: number;
  /** First retry delay (default 100 ms). */
  minBackoffMs?: number;
  /** Longest retry delay (default 10 000 ms). */
  maxBackoffMs?: number;
  /** Timeout of each request (default 10 000 ms). */
  timeoutMs?: number;
  /** Logger; the token is never logged. */
  logger: Logger;
  /** Node metrics (`influx*`). */
  metrics: Metrics;
}

interface Entry {
  line: string;
  resolve: () => void;
}

/** Queued points in order; `since` = when the first of them was queued. */
interface Chunk {
  entries: Entry[];
  since: number;
}

type Outcome =
  | { kind: "done" }
  | { kind: "split" }
  | { kind: "retry"; reason: string; status?: number; retryAfterMs?: number };

const DONE: Outcome = { kind: "done" };
const WARN_EVERY_MS = 10_000;

/**
 * Writes points to InfluxDB in batches (by size or time, whichever comes first), one request
 * at a time, retrying with exponential backoff and jitter while InfluxDB is unreachable,
 * times out, answers 5xx, 429, 401, 403 or 404 (the last three are configuration problems
 * an operator fixes — wrong token, permission, bucket — so the points wait rather than being
 * lost). Each `write()` resolves once its point is accepted or definitively refused (another
 * 4xx: the point itself is bad), so the caller can retire it from its durable log.
 *
 * @example
 * ```ts
 * await using influx = new InfluxWriter({ url, api: "v2", token, org, bucket, logger, metrics });
 * if (influx.full) await influx.whenSpace();
 * await influx.write({ measurement: "telemetry", tags: { device: "press-7" }, fields: { temp: 21.5 }, ts: Date.now() });
 * ```
 */
export class InfluxWriter {
  readonly #log: Logger;
  readonly #m: Metrics;
  readonly #api: "v1" | "v2";
  readonly #db: string;
  readonly #batchSize: number;
  readonly #intervalMs: number;
  readonly #maxBuffer: number;
  readonly #minBackoff: number;
  readonly #maxBackoff: number;
  readonly #timeoutMs: number;
  readonly #writeUrl: string;
  readonly #createDbUrl: string;
  readonly #headers: Record<string, string>;
  readonly #secrets: string[];

  #chunks: Chunk[] = [];
  #count = 0; // queued + in flight
  #queued = 0; // sequence number of the last queued point
  #settled = 0; // points settled so far (always a prefix of the queue)
  #flushWaiters: { target: number; resolve: () => void }[] = [];
  #spaceWaiters: (() => void)[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #pumping: Promise<void> | undefined;
  #closed = false;
  #closedWarned = false;
  #abort = new AbortController();
  #wake: (() => void) | undefined;
  #needDb: boolean;
  #attempt = 0;
  #downSince: number | undefined;
  #lastWarnAt = -Infinity;
  #failuresSinceWarn = 0;

  /** Creates the writer; with `api: "v1"` it starts creating the database at once. */
  constructor(opts: InfluxWriterOptions) {
    this.#log = opts.logger;
    this.#m = opts.metrics;
    this.#api = opts.api;
    this.#db = opts.db ?? "twinmill";
    this.#batchSize = positive(opts.batchSize, 5000, "batchSize");
    this.#intervalMs = positive(opts.flushIntervalMs, 100, "flushIntervalMs", true);
    this.#maxBuffer = positive(opts.maxBuffer, 200_000, "maxBuffer");
    this.#minBackoff = positive(opts.minBackoffMs, 100, "minBackoffMs", true);
    this.#maxBackoff = Math.max(
      this.#minBackoff,
      positive(opts.maxBackoffMs, 10_000, "maxBackoffMs"),
    );
    this.#timeoutMs = positive(opts.timeoutMs, 10_000, "timeoutMs");
    const base = opts.url.replace(/\/+$/, "");
    if (opts.api === "v1") {
      // nanoseconds (InfluxDB 1.x's own default, spelled out): see toLineProtocol
      const q = new URLSearchParams({ db: this.#db, precision: "ns" });
      this.#writeUrl = `${base}/write?${q}`;
    } else {
      const q = new URLSearchParams();
      if (opts.org !== undefined) q.set("org", opts.org);
      if (opts.bucket !== undefined) q.set("bucket", opts.bucket);
      q.set("precision", "ns");
      this.#writeUrl = `${base}/api/v2/write?${q}`;
    }
    const create = `CREATE DATABASE "${this.#db.replace(/["\\]/g, "\\$&")}"`;
    this.#createDbUrl = `${base}/query?${new URLSearchParams({ q: create })}`;
    this.#headers = { "Content-Type": "text/plain; charset=utf-8" };
    if (opts.token) this.#headers.Authorization = `Token ${opts.token}`;
    this.#secrets = [opts.token, new URL(base).password].filter((s): s is string => !!s);
    this.#needDb = opts.api === "v1";
    if (this.#needDb) this.#kick();
  }

  /**
   * Queues a point. The promise resolves when InfluxDB accepted it (2xx) or definitively
   * refused it (4xx other than 401/403/404/429: counted in `influxFailed{reason="rejected"}` and logged,
   * not retried). It never rejects and never drops a point silently: a point with no
   * writable field resolves at once, counted in `influxFailed{reason="no_fields"}`. After
   * `close()` points are not queued and their promise never settles (they stay in the
   * caller's durable log).
   */
  write(p: Point): Promise<void> {
    const line = toLineProtocol(p);
    if (!line) {
      this.#m.influxFailed.inc({ reason: "no_fields" });
      this.#log.debug("point has no writable field, skipped", { measurement: p.measurement });
      return Promise.resolve();
    }
    if (this.#closed) {
      if (!this.#closedWarned) {
        this.#closedWarned = true;
        this.#log.warn("InfluxDB writer is closed: points are no longer written");
      }
      return new Promise<void>(() => {});
    }
    return new Promise<void>((resolve) => {
      let last = this.#chunks.at(-1);
      if (!last || last.entries.length >= this.#batchSize) {
        last = { entries: [], since: Date.now() };
        this.#chunks.push(last);
      }
      last.entries.push({ line, resolve });
      this.#count++;
      this.#queued++;
      this.#m.influxBuffered.set(this.#count);
      if (this.#count === this.#maxBuffer) {
        this.#m.influxOverflow.inc();
        this.#log.warn("InfluxDB buffer full, holding back ingest", {
          buffered: this.#count,
          maxBuffer: this.#maxBuffer,
        });
      }
      if (!this.#pumping) this.#schedule();
    });
  }

  /** How long the oldest unwritten point has waited (ms); 0 when none waits. */
  lagMs(now = Date.now()): number {
    const c = this.#chunks[0];
    return c ? Math.max(0, now - c.since) : 0;
  }

  /** Points queued or in flight. */
  get buffered(): number {
    return this.#count;
  }

  /**
   * True when `buffered >= maxBuffer`: the caller must hold back new input (backpressure)
   * until `whenSpace()` resolves.
   */
  get full(): boolean {
    return this.#count >= this.#maxBuffer;
  }

  /** Resolves once the buffer is below `maxBuffer` again (at once if it is; also on close). */
  whenSpace(): Promise<void> {
    if (!this.full || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#spaceWaiters.push(resolve));
  }

  /**
   * Resolves when everything queued so far is written or refused, sending partial batches
   * at once (used on shutdown and in tests). Also resolves when the writer is closed: check
   * `buffered` to see what stayed unwritten.
   */
  flush(): Promise<void> {
    if (this.#count === 0 || this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.#flushWaiters.push({ target: this.#queued, resolve });
      if (!this.#pumping) this.#kick();
    });
  }

  /**
   * Stops timers and retries, waits up to `timeoutMs` (default: the request timeout) for the
   * request in flight, then aborts it. Pending points stay unwritten (they are still in the
   * caller's durable log) and their promises never settle.
   */
  async close(timeoutMs: number = this.#timeoutMs): Promise<void> {
    if (this.#closed) return await this.#pumping;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#wake?.();
    if (this.#pumping) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const expired = new Promise<"expired">((r) => timer = setTimeout(r, timeoutMs, "expired"));
      const first = await Promise.race([this.#pumping, expired]);
      clearTimeout(timer);
      if (first === "expired") this.#abort.abort(new DOMException("writer closed", "AbortError"));
      await this.#pumping;
    }
    for (const w of this.#flushWaiters.splice(0)) w.resolve();
    for (const r of this.#spaceWaiters.splice(0)) r();
    if (this.#count > 0) {
      this.#log.info("InfluxDB writer closed with points unwritten", { buffered: this.#count });
    }
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- scheduling -------------------------------------------------------------------------

  /** A batch should go now: a full batch waits, a flush was asked, or the oldest point aged. */
  #due(): boolean {
    const c = this.#chunks[0];
    if (!c) return false;
    return this.#chunks.length > 1 || c.entries.length >= this.#batchSize ||
      this.#flushWaiters.length > 0 || Date.now() - c.since >= this.#intervalMs;
  }

  /** Called while not pumping: send now or arm the timer for the oldest point. */
  #schedule(): void {
    if (this.#closed || this.#chunks.length === 0) return;
    if (this.#due()) return this.#kick();
    if (this.#timer !== undefined) return;
    const delay = Math.max(0, this.#chunks[0].since + this.#intervalMs - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#pumping) this.#kick();
    }, delay);
  }

  #kick(): void {
    if (this.#pumping || this.#closed) return;
    this.#pumping = this.#pump().catch((err) => {
      this.#log.error("InfluxDB writer failed unexpectedly", { error: err });
    }).finally(() => {
      this.#pumping = undefined;
      this.#schedule();
    });
  }

  /** The only sender: one request at a time, batches in queue order. */
  async #pump(): Promise<void> {
    let batch: Chunk | undefined;
    try {
      while (!this.#closed) {
        if (this.#needDb) {
          const out = await this.#createDb();
          if (out.kind === "retry") {
            if (this.#closed) return;
            if (batch === undefined && this.#chunks.length === 0) {
              // Nothing to write: try again before the next write instead of retrying now.
              this.#noteFailure(out, false);
              return;
            }
            await this.#retryLater(out);
            continue;
          }
        }
        if (!batch) {
          if (!this.#due()) return;
          batch = this.#chunks.shift()!;
        }
        const out = await this.#send(batch.entries);
        if (out.kind === "done") {
          batch = undefined;
          this.#attempt = 0;
        } else if (out.kind === "split") {
          const half = batch.entries.length >> 1;
          // The second half is due at once (since 0), right after the first.
          this.#chunks.unshift({ entries: batch.entries.slice(half), since: 0 });
          batch = { entries: batch.entries.slice(0, half), since: batch.since };
        } else if (!this.#closed) {
          await this.#retryLater(out);
        }
      }
    } finally {
      if (batch) this.#chunks.unshift(batch); // closed: back in the queue, unwritten
    }
  }

  // ---- requests ---------------------------------------------------------------------------

  #signal(): AbortSignal {
    return AbortSignal.any([AbortSignal.timeout(this.#timeoutMs), this.#abort.signal]);
  }

  async #createDb(): Promise<Outcome> {
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.#createDbUrl, {
        method: "POST",
        headers: this.#headers,
        signal: this.#signal(),
      });
      text = await res.text();
    } catch (err) {
      return { kind: "retry", reason: this.#describe(err) };
    }
    if (res.status === 429 || res.status >= 500) return retryOutcome(res, text);
    this.#needDb = false;
    this.#recovered();
    if (res.ok) {
      this.#log.debug("InfluxDB database ensured", { db: this.#db });
    } else {
      // e.g. no admin rights: writing still works if the database exists.
      this.#log.warn("Cannot create InfluxDB database", {
        db: this.#db,
        status: res.status,
        message: this.#redact(bodyMessage(text)),
      });
    }
    return DONE;
  }

  async #send(entries: Entry[]): Promise<Outcome> {
    const n = entries.length;
    const body = entries.map((e) => e.line).join("\n");
    const t0 = performance.now();
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.#writeUrl, {
        method: "POST",
        headers: this.#headers,
        body,
        signal: this.#signal(),
      });
      text = await res.text();
    } catch (err) {
      this.#m.influxLatency.observe((performance.now() - t0) / 1000);
      return { kind: "retry", reason: this.#describe(err) };
    }
    this.#m.influxLatency.observe((performance.now() - t0) / 1000);
    if (res.status === 429 || res.status >= 500) return retryOutcome(res, text);
    if (this.#api === "v1" && res.status === 404 && /database not found/i.test(text)) {
      this.#needDb = true;
      return { kind: "retry", reason: "database not found", status: 404 };
    }
    if (res.status === 401 || res.status === 403 || res.status === 404) {
      // Wrong token, no permission, unknown bucket/org: a configuration problem an operator
      // fixes, not a bad point. Retrying (and backpressure) keeps the data; refusing loses it.
      return retryOutcome(res, text);
    }
    if (res.status === 413 && n > 1) return { kind: "split" };
    this.#recovered();
    if (res.ok) {
      this.#m.influxWritten.inc(n);
    } else {
      const message = this.#redact(bodyMessage(text));
      // InfluxDB writes the valid points of a batch and reports "partial write: ...
      // [unable to parse '<line>': ...] dropped=N" (lines it could not parse are not in N).
      const dropped = /partial write:[^]*dropped=(\d+)/.exec(message);
      const unparsed = message.match(/unable to parse/g)?.length ?? 0;
      const failed = dropped ? Math.min(n, Number(dropped[1]) + unparsed) : n;
      if (failed < n) this.#m.influxWritten.inc(n - failed);
      this.#m.influxFailed.inc({ reason: "rejected" }, failed);
      this.#log.error("InfluxDB refused points", { status: res.status, message, points: failed });
    }
    this.#settle(entries);
    return DONE;
  }

  #settle(entries: Entry[]): void {
    for (const e of entries) e.resolve();
    this.#count -= entries.length;
    this.#settled += entries.length;
    this.#m.influxBuffered.set(this.#count);
    while (this.#flushWaiters.length > 0 && this.#flushWaiters[0].target <= this.#settled) {
      this.#flushWaiters.shift()!.resolve();
    }
    if (this.#count < this.#maxBuffer) { for (const r of this.#spaceWaiters.splice(0)) r(); }
  }

  // ---- failures ---------------------------------------------------------------------------

  async #retryLater(out: Extract<Outcome, { kind: "retry" }>): Promise<void> {
    const delay = out.retryAfterMs !== undefined
      ? Math.min(this.#maxBackoff, Math.max(this.#minBackoff, out.retryAfterMs))
      : this.#backoff();
    this.#m.influxRetries.inc();
    this.#noteFailure(out, true, delay);
    await this.#sleep(delay);
  }

  /** Exponential backoff with jitter, in [minBackoff, maxBackoff]. */
  #backoff(): number {
    const base = Math.min(this.#maxBackoff, this.#minBackoff * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return Math.max(this.#minBackoff, Math.round(base / 2 + Math.random() * (base / 2)));
  }

  /** Rate-limited warning: at most one line per 10 s, with the failures since the last one. */
  #noteFailure(out: Extract<Outcome, { kind: "retry" }>, retrying: boolean, delay?: number) {
    this.#downSince ??= Date.now();
    this.#failuresSinceWarn++;
    const now = Date.now();
    if (now - this.#lastWarnAt < WARN_EVERY_MS) return;
    this.#log.warn(
      retrying ? "InfluxDB write failed, retrying" : "InfluxDB unreachable, will retry later",
      {
        reason: this.#redact(out.reason),
        status: out.status,
        failures: this.#failuresSinceWarn,
        buffered: this.#count,
        retryInMs: delay,
      },
    );
    this.#lastWarnAt = now;
    this.#failuresSinceWarn = 0;
  }

  #recovered(): void {
    if (this.#downSince === undefined) return;
    this.#log.info("InfluxDB reachable again", {
      downMs: Date.now() - this.#downSince,
      pointsWaited: this.#count,
    });
    this.#downSince = undefined;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      this.#wake = done;
      function done() {
        clearTimeout(timer);
        resolve();
      }
    }).finally(() => this.#wake = undefined);
  }

  #describe(err: unknown): string {
    if (err instanceof DOMException && err.name === "TimeoutError") {
      return `timeout after ${this.#timeoutMs} ms`;
    }
    return this.#redact(err instanceof Error ? err.message : String(err));
  }

  #redact(s: string): string {
    for (const secret of this.#secrets) s = s.replaceAll(secret, "***");
    return s.replace(/\/\/[^/@\s]*@/g, "//***@");
  }
}

function retryOutcome(res: Response, text: string): Outcome {
  const after = Number(res.headers.get("retry-after"));
  return {
    kind: "retry",
    reason: bodyMessage(text) || res.statusText || `HTTP ${res.status}`,
    status: res.status,
    retryAfterMs: after > 0 ? after * 1000 : undefined,
  };
}

/** The `message` (v2) or `error` (v1) of a JSON error body, else the text (truncated). */
function bodyMessage(text: string): string {
  try {
    const j = JSON.parse(text);
    const m = j?.message ?? j?.error;
    if (typeof m === "string") return m;
  } catch {
    // not JSON
  }
  return text.slice(0, 500);
}

function positive(v: number | undefined, dflt: number, name: string, zeroOk = false): number {
  if (v === undefined) return dflt;
  if (!Number.isFinite(v) || v < 0 || (!zeroOk && v === 0)) {
    throw new RangeError(`Cannot create InfluxWriter: ${name} must be a positive number, got ${v}`);
  }
  return v;
}
