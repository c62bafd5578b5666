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
import { type InfluxWriterOptions, settingsOf } from "./influx_options.ts";
import { type Point, toLineProtocol } from "./line_protocol.ts";
import { InfluxHttp, type Retry } from "./influx_http.ts";
import { InfluxOutage } from "./influx_outage.ts";
import { Batch } from "./influx_batch.ts";

/** What `write()` returns for a point with no field: already settled. */
const SETTLED = Promise.resolve();
/** What `write()` returns once closed: never settles (the point stays in the caller's log). */
const NEVER = new Promise<void>(() => {});

type Outcome = { kind: "done" } | { kind: "split" } | Retry;

const DONE: Outcome = { kind: "done" };

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
  readonly #db: string;
  readonly #batchSize: number;
  readonly #intervalMs: number;
  readonly #maxBuffer: number;
  readonly #timeoutMs: number;
  readonly #http: InfluxHttp;
  readonly #outage: InfluxOutage;

  #chunks: Batch[] = [];
  #count = 0; // queued + in flight
  #queued = 0; // sequence number of the last queued point
  #settled = 0; // points settled so far (always a prefix of the queue)
  #flushWaiters: { target: number; resolve: () => void }[] = [];
  #spaceWaiters: (() => void)[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #pumping: Promise<void> | undefined;
  #closed = false;
  #closedWarned = false;
  #wake: (() => void) | undefined;
  #needDb: boolean;
  /** Bytes the last full batch took: the capacity a new batch starts with. */
  #batchBytes = 0;

  /** Creates the writer; with `api: "v1"` it starts creating the database at once. */
  constructor(opts: InfluxWriterOptions) {
    this.#log = opts.logger;
    this.#m = opts.metrics;
    const o = settingsOf(opts);
    this.#db = o.db;
    this.#batchSize = o.batchSize;
    this.#intervalMs = o.flushIntervalMs;
    this.#maxBuffer = o.maxBuffer;
    this.#timeoutMs = o.timeoutMs;
    this.#http = new InfluxHttp(o);
    this.#outage = new InfluxOutage(
      this.#log,
      o.minBackoffMs,
      o.maxBackoffMs,
      (x) => this.#http.redact(x),
    );
    this.#needDb = opts.api === "v1";
    if (this.#needDb) this.#kick();
  }

  /**
   * Queues a point (encoded at once). The promise resolves when InfluxDB accepted it (2xx) or
   * definitively refused it (4xx other than 401/403/404/429: counted in `influxFailed{reason="rejected"}` and logged,
   * not retried). It never rejects and never drops a point silently: a point with no
   * writable field resolves at once, counted in `influxFailed{reason="no_fields"}`. After
   * `close()` points are not queued and their promise never settles (they stay in the
   * caller's durable log). The points of one batch share one promise, settled with the batch.
   */
  write(p: Point): Promise<void> {
    const line = toLineProtocol(p);
    if (!line) {
      this.#m.influxFailed.inc({ reason: "no_fields" });
      this.#log.debug("point has no writable field, skipped", { measurement: p.measurement });
      return SETTLED;
    }
    if (this.#closed) {
      if (!this.#closedWarned) {
        this.#closedWarned = true;
        this.#log.warn("InfluxDB writer is closed: points are no longer written");
      }
      return NEVER;
    }
    let last = this.#chunks.at(-1);
    if (!last || last.size >= this.#batchSize) {
      if (last) this.#batchBytes = last.bytes + (last.bytes >> 4); // and some margin
      last = new Batch(Date.now(), undefined, this.#batchBytes);
      this.#chunks.push(last);
    }
    last.push(line);
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
    return last.settled.promise;
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
      if (first === "expired") this.#http.abort();
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
    return this.#chunks.length > 1 || c.size >= this.#batchSize ||
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
    let batch: Batch | undefined;
    try {
      while (!this.#closed) {
        if (this.#needDb) {
          const out = await this.#createDb();
          if (out.kind === "retry") {
            if (this.#closed) return;
            if (batch === undefined && this.#chunks.length === 0) {
              // Nothing to write: try again before the next write instead of retrying now.
              this.#outage.failed(out, false, this.#count);
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
        const out = await this.#send(batch);
        if (out.kind === "done") {
          batch = undefined;
          this.#outage.reset();
        } else if (out.kind === "split") {
          const [first, second] = batch.halves();
          this.#chunks.unshift(second);
          batch = first;
        } else if (!this.#closed) {
          await this.#retryLater(out);
        }
      }
    } finally {
      if (batch) this.#chunks.unshift(batch); // closed: back in the queue, unwritten
    }
  }

  // ---- requests ---------------------------------------------------------------------------

  async #createDb(): Promise<Outcome> {
    const a = await this.#http.createDb();
    if (a.kind === "retry") return a;
    this.#needDb = false;
    this.#outage.recovered(this.#count);
    if (a.kind === "created") {
      this.#log.debug("InfluxDB database ensured", { db: this.#db });
    } else {
      // e.g. no admin rights: writing still works if the database exists.
      this.#log.warn("Cannot create InfluxDB database", {
        db: this.#db,
        status: a.status,
        message: a.message,
      });
    }
    return DONE;
  }

  async #send(batch: Batch): Promise<Outcome> {
    const n = batch.size;
    const t0 = performance.now();
    const a = await this.#http.write(batch.body(), n);
    this.#m.influxLatency.observe((performance.now() - t0) / 1000);
    if (a.kind === "retry") {
      if (a.dbMissing) this.#needDb = true;
      return a;
    }
    if (a.kind === "split") return a;
    this.#outage.recovered(this.#count);
    if (a.kind === "written") {
      this.#m.influxWritten.inc(n);
    } else {
      const message = a.message;
      // InfluxDB writes the valid points of a batch and reports "partial write: ...
      // [unable to parse '<line>': ...] dropped=N" (lines it could not parse are not in N).
      const dropped = /partial write:[^]*dropped=(\d+)/.exec(message);
      const unparsed = message.match(/unable to parse/g)?.length ?? 0;
      const failed = dropped ? Math.min(n, Number(dropped[1]) + unparsed) : n;
      if (failed < n) this.#m.influxWritten.inc(n - failed);
      this.#m.influxFailed.inc({ reason: "rejected" }, failed);
      this.#log.error("InfluxDB refused points", { status: a.status, message, points: failed });
    }
    this.#settle(batch);
    return DONE;
  }

  #settle({ size, settled }: Batch): void {
    if (--settled.parts === 0) settled.resolve();
    this.#count -= size;
    this.#settled += size;
    this.#m.influxBuffered.set(this.#count);
    while (this.#flushWaiters.length > 0 && this.#flushWaiters[0].target <= this.#settled) {
      this.#flushWaiters.shift()!.resolve();
    }
    if (this.#count < this.#maxBuffer) { for (const r of this.#spaceWaiters.splice(0)) r(); }
  }

  // ---- failures ---------------------------------------------------------------------------

  async #retryLater(out: Retry): Promise<void> {
    const delay = this.#outage.delay(out);
    this.#m.influxRetries.inc();
    this.#outage.failed(out, true, this.#count, delay);
    await this.#sleep(delay);
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
}
