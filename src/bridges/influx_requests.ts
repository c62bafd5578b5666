/**
 * The InfluxDB writer's requests: a batch's write with its metrics (written, refused, latency),
 * v1's `CREATE DATABASE` (once for all senders, again when InfluxDB reports the database
 * missing), and the waits before a retry (backoff per sender, rate-limited outage logging).
 * @module
 */
import type { Logger } from "../obs/log.ts";
import type { Metrics } from "../obs/metrics.ts";
import type { InfluxSettings } from "./influx_options.ts";
import { InfluxHttp, type Retry } from "./influx_http.ts";
import { InfluxOutage } from "./influx_outage.ts";
import type { Batch } from "./influx_batch.ts";

/** What became of a request: done (written or refused: settle it), split (413) or retry. */
export type Outcome = { kind: "done" } | { kind: "split" } | Retry;

const DONE: Outcome = { kind: "done" };

/** One sender's backoff: its failures in a row. */
export interface Backoff {
  attempt: number;
}

/** Requests of one writer to one InfluxDB. */
export class InfluxRequests {
  readonly #log: Logger;
  readonly #m: Metrics;
  readonly #db: string;
  readonly #http: InfluxHttp;
  readonly #outage: InfluxOutage;
  /** Points queued or in flight, for the log. */
  readonly #buffered: () => number;
  readonly #wakers = new Set<() => void>();
  #needDb: boolean;
  #creatingDb: Promise<Outcome> | undefined;

  /** `buffered`: the writer's points queued or in flight (logged on outages). */
  constructor(o: InfluxSettings, log: Logger, metrics: Metrics, buffered: () => number) {
    this.#log = log;
    this.#m = metrics;
    this.#db = o.db;
    this.#buffered = buffered;
    this.#http = new InfluxHttp(o);
    this.#outage = new InfluxOutage(
      log,
      o.minBackoffMs,
      o.maxBackoffMs,
      (x) => this.#http.redact(x),
    );
    this.#needDb = o.api === "v1";
  }

  /** v1: the database must be created (again) before writing. */
  get needDb(): boolean {
    return this.#needDb;
  }

  /** v1, at start: `CREATE DATABASE`; unreachable with nothing to write: warn, retry later. */
  createDbAtStart(idle: () => boolean): void {
    this.ensureDb().then((out) => {
      if (out.kind === "retry" && idle()) this.#outage.failed(out, false, this.#buffered());
    });
  }

  /** v1: `CREATE DATABASE`, one request for every sender that needs it. */
  ensureDb(): Promise<Outcome> {
    this.#creatingDb ??= this.#createDb().finally(() => this.#creatingDb = undefined);
    return this.#creatingDb;
  }

  async #createDb(): Promise<Outcome> {
    const a = await this.#http.createDb();
    if (a.kind === "retry") return a;
    this.#needDb = false;
    this.#outage.recovered(this.#buffered());
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

  /** Writes `batch`; counts its points written or refused when done (the caller settles it). */
  async write(batch: Batch): Promise<Outcome> {
    const n = batch.size;
    const t0 = performance.now();
    const a = await this.#http.write(batch.body(), n);
    this.#m.influxLatency.observe((performance.now() - t0) / 1000);
    if (a.kind === "retry") {
      if (a.dbMissing) this.#needDb = true;
      return a;
    }
    if (a.kind === "split") return a;
    this.#outage.recovered(this.#buffered());
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
    return DONE;
  }

  /** Waits before a sender retries after `out` (its own backoff; rate-limited warning). */
  async retryLater(b: Backoff, out: Retry): Promise<void> {
    const delay = this.#outage.delay(out, b.attempt);
    if (out.retryAfterMs === undefined) b.attempt++;
    this.#m.influxRetries.inc();
    // exact while InfluxDB is away, when operators look at it (else it lags < one batch)
    const buffered = this.#buffered();
    this.#m.influxBuffered.set(buffered);
    this.#outage.failed(out, true, buffered, delay);
    await this.#sleep(delay);
  }

  /** Ends every wait before a retry at once (on close). */
  wake(): void {
    for (const wake of this.#wakers) wake();
  }

  /** Aborts the requests in flight and every later one. */
  abort(): void {
    this.#http.abort();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      const wakers = this.#wakers;
      wakers.add(done);
      function done() {
        clearTimeout(timer);
        wakers.delete(done);
        resolve();
      }
    });
  }
}
