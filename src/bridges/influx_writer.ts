/**
 * Batched, acknowledged writer of points to InfluxDB (v1 `/write` or v2 `/api/v2/write`).
 *
 * Why hand-written rather than npm:@influxdata/influxdb-client's WriteApi: ingest retires an
 * entry from its durable inbound log only once the point is in InfluxDB, so every `write()`
 * here returns a promise that settles when InfluxDB accepted (or definitively refused) that
 * very point; WriteApi only reports per batch through callbacks and, when InfluxDB is down,
 * silently drops the oldest points of its bounded retry buffer. We need the opposite: a
 * bounded buffer that pushes back on the caller (`full` / `whenSpace()`) and never loses a
 * point, and writes of one series that reach InfluxDB in the order they were queued.
 *
 * How batches go out (see "InfluxDB writer" in bench/README.md): with one batch due and nothing
 * in flight, that batch is sent whole, as queued. With more due (a backlog) and `maxInFlight`
 * > 1, up to `maxInFlight` batches are spread by series over `maxInFlight` lanes
 * (`Batch.spread`); each lane sends its parts one at a time, in order, so the lanes write
 * concurrently and two writes of one series (same measurement and tag set) are never in flight
 * together: InfluxDB, which keeps the last write of a series and timestamp, sees them in queue
 * order. A whole batch holds every series: it goes only while no lane is busy, and no lane
 * starts while it is in flight.
 * @module
 */
import type { Logger } from "../obs/log.ts";
import type { Metrics } from "../obs/metrics.ts";
import { type InfluxWriterOptions, settingsOf } from "./influx_options.ts";
import { type Point, toLineProtocol } from "./line_protocol.ts";
import { InfluxRequests } from "./influx_requests.ts";
import { Batch, type Settlement } from "./influx_batch.ts";

/** What `write()` returns for a point with no field: already settled. */
const SETTLED = Promise.resolve();
/** What `write()` returns once closed: never settles (the point stays in the caller's log). */
const NEVER = new Promise<void>(() => {});

/** A sender: parts sent one at a time, in order; `attempt` = its failures in a row. */
interface Lane {
  queue: Batch[];
  busy: boolean;
  attempt: number;
}

const lane = (): Lane => ({ queue: [], busy: false, attempt: 0 });

/**
 * Writes points to InfluxDB in batches (by size or time, whichever comes first), up to
 * `maxInFlight` requests at a time (one per series), retrying with exponential backoff and
 * jitter while InfluxDB is unreachable, times out, answers 5xx, 429, 401, 403 or 404 (the
 * last three are configuration problems an operator fixes — wrong token, permission, bucket —
 * so the points wait rather than being lost). Each `write()` resolves once its point is
 * accepted or definitively refused (another 4xx: the point itself is bad), so the caller can
 * retire it from its durable log.
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
  readonly #batchSize: number;
  readonly #intervalMs: number;
  readonly #maxBuffer: number;
  readonly #timeoutMs: number;
  readonly #req: InfluxRequests;
  /** Lanes of spread batches, one per series hash (`maxInFlight`). */
  readonly #lanes: Lane[];
  /** The sender of whole batches (in flight alone). */
  readonly #whole = lane();

  /** Queued batches, not yet sent; every one but the last is full. */
  #chunks: Batch[] = [];
  /** Settlements of the batches taken from the queue and not settled yet, with `since`. */
  #sent = new Map<Settlement, number>();
  #count = 0; // queued + in flight
  #flushes = 0; // flush() calls waiting: a partial batch is due at once
  #spaceWaiters: (() => void)[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Running senders (whole or lane), for close(). */
  #tasks = new Set<Promise<void>>();
  #closed = false;
  #closing = Promise.withResolvers<void>();
  #closedWarned = false;
  /** Bytes the last full batch took: the capacity a new batch starts with. */
  #batchBytes = 0;

  /** Creates the writer; with `api: "v1"` it starts creating the database at once. */
  constructor(opts: InfluxWriterOptions) {
    this.#log = opts.logger;
    this.#m = opts.metrics;
    const o = settingsOf(opts);
    this.#batchSize = o.batchSize;
    this.#intervalMs = o.flushIntervalMs;
    this.#maxBuffer = o.maxBuffer;
    this.#timeoutMs = o.timeoutMs;
    this.#lanes = Array.from({ length: o.maxInFlight }, lane);
    this.#req = new InfluxRequests(o, this.#log, this.#m, () => this.#count);
    if (this.#req.needDb) this.#req.createDbAtStart(() => !this.#closed && this.#count === 0);
  }

  /**
   * Queues a point (encoded at once). The promise resolves when InfluxDB accepted it (2xx) or
   * definitively refused it (4xx other than 401/403/404/429: counted in
   * `influxFailed{reason="rejected"}` and logged, not retried). It never rejects and never
   * drops a point silently: a point with no writable field resolves at once, counted in
   * `influxFailed{reason="no_fields"}`. After `close()` points are not queued and their promise
   * never settles (they stay in the caller's durable log). The points of one batch share one
   * promise, settled once all of them are (spread or not).
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
    // The gauge is set at each new batch, each batch sent and each part settled (a set per
    // point cost ~50 ns, 5% of the writer): it lags by less than one batch.
    if (last.size === 1) this.#m.influxBuffered.set(this.#count);
    if (this.#count === this.#maxBuffer) {
      this.#m.influxOverflow.inc();
      this.#log.warn("InfluxDB buffer full, holding back ingest", {
        buffered: this.#count,
        maxBuffer: this.#maxBuffer,
      });
    }
    if (last.size === 1 || last.size >= this.#batchSize) this.#dispatch();
    return last.settled.promise;
  }

  /** How long the oldest unwritten point has waited (ms); 0 when none waits. */
  lagMs(now = Date.now()): number {
    const since = this.#sent.values().next().value ?? this.#chunks[0]?.since;
    return since === undefined ? 0 : Math.max(0, now - since);
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
  async flush(): Promise<void> {
    if (this.#count === 0 || this.#closed) return;
    const all = [...this.#sent.keys(), ...this.#chunks.map((b) => b.settled)];
    this.#flushes++;
    this.#dispatch();
    try {
      await Promise.race([Promise.all(all.map((s) => s.promise)), this.#closing.promise]);
    } finally {
      this.#flushes--;
      this.#dispatch(); // arms the timer for a partial batch queued since (none while flushing)
    }
  }

  /**
   * Stops timers and retries, waits up to `timeoutMs` (default: the request timeout) for the
   * requests in flight, then aborts them. Pending points stay unwritten (they are still in the
   * caller's durable log) and their promises never settle.
   */
  async close(timeoutMs: number = this.#timeoutMs): Promise<void> {
    if (this.#closed) {
      await Promise.all(this.#tasks);
      return;
    }
    this.#closed = true;
    this.#closing.resolve();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#req.wake();
    if (this.#tasks.size > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const expired = new Promise<"expired">((r) => timer = setTimeout(r, timeoutMs, "expired"));
      const first = await Promise.race([Promise.all(this.#tasks), expired]);
      clearTimeout(timer);
      if (first === "expired") this.#req.abort();
      await Promise.all(this.#tasks);
    }
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

  /** Queued batches due at `now`: every full one, and the last if it aged or a flush asks. */
  #dueCount(now: number): number {
    const n = this.#chunks.length;
    if (n === 0) return 0;
    const c = this.#chunks[n - 1];
    const lastDue = c.size >= this.#batchSize || this.#flushes > 0 ||
      now - c.since >= this.#intervalMs;
    return lastDue ? n : n - 1;
  }

  /**
   * Sends what is due where it may go: a lone batch whole while every sender is idle; else,
   * while some lane is idle and no part waits, up to one batch per lane spread over the lanes.
   * Then arms the timer for the last (partial) batch. Both decisions use one clock reading: a
   * batch found not due must get its timer even if it became due a moment later, or it would
   * wait, with nothing in flight, until the next write.
   */
  #dispatch(): void {
    const lanes = this.#lanes;
    const now = Date.now();
    while (!this.#closed && !this.#whole.busy) {
      const due = this.#dueCount(now);
      if (due === 0) break;
      // lanes not sending; none while a part waits in a lane (at most one behind each request)
      let idle = 0;
      for (const l of lanes) {
        if (l.queue.length > 0) {
          idle = 0;
          break;
        }
        if (!l.busy) idle++;
      }
      if (idle === 0) break;
      if (idle === lanes.length && (due === 1 || lanes.length === 1)) {
        this.#take(this.#whole, 1);
        break;
      }
      this.#take(undefined, Math.min(due, lanes.length));
    }
    this.#arm(now);
  }

  /** Takes `n` batches off the queue, to `to` whole or spread over the lanes; starts them. */
  #take(to: Lane | undefined, n: number): void {
    const batches = this.#chunks.splice(0, n);
    this.#m.influxBuffered.set(this.#count);
    for (const { settled, since } of batches) {
      this.#sent.set(settled, since);
      settled.promise.then(() => this.#sent.delete(settled));
    }
    if (to) {
      to.queue.push(batches[0]);
      return this.#start(to);
    }
    const parts = Batch.spread(batches, this.#lanes.length, batches[0].since);
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      if (!part) continue;
      this.#lanes[i].queue.push(part);
      this.#start(this.#lanes[i]);
    }
  }

  /** Arms the timer for the last, partial batch, if none is armed and it is not due at `now`. */
  #arm(now: number): void {
    const last = this.#chunks.at(-1);
    if (this.#closed || this.#timer !== undefined || !last || last.size >= this.#batchSize) return;
    // Due already: it waits for a sender, whose end dispatches again (no timer spinning).
    const delay = last.since + this.#intervalMs - now;
    if (delay <= 0 || this.#flushes > 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#dispatch();
    }, delay);
  }

  #start(l: Lane): void {
    if (l.busy || this.#closed) return;
    l.busy = true;
    const task = this.#run(l).catch((err) => {
      this.#log.error("InfluxDB writer failed unexpectedly", { error: err });
    }).finally(() => {
      l.busy = false;
      this.#tasks.delete(task);
      // a part pushed after the loop found the queue empty, before this ran
      if (l.queue.length > 0) this.#start(l);
      this.#dispatch();
    });
    this.#tasks.add(task);
  }

  /** One sender: its parts one request at a time, in order, each until it is settled. */
  async #run(l: Lane): Promise<void> {
    let batch: Batch | undefined;
    try {
      while (!this.#closed) {
        if (this.#req.needDb) {
          const out = await this.#req.ensureDb();
          if (out.kind === "retry") {
            if (!this.#closed) await this.#req.retryLater(l, out);
            continue;
          }
        }
        batch ??= l.queue.shift();
        if (!batch) return;
        const out = await this.#req.write(batch);
        if (out.kind === "done") {
          this.#settle(batch);
          batch = undefined;
          l.attempt = 0;
        } else if (out.kind === "split") {
          const [first, second] = batch.halves();
          l.queue.unshift(second);
          batch = first;
        } else if (!this.#closed) {
          await this.#req.retryLater(l, out);
        }
      }
    } finally {
      if (batch) l.queue.unshift(batch); // closed: unwritten
    }
  }

  #settle({ size, settled }: Batch): void {
    if (--settled.parts === 0) settled.resolve();
    this.#count -= size;
    this.#m.influxBuffered.set(this.#count);
    if (this.#count < this.#maxBuffer) { for (const r of this.#spaceWaiters.splice(0)) r(); }
  }
}
