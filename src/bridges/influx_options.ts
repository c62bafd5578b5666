/**
 * Options of the InfluxDB writer, and their defaults and bounds.
 * @module
 */
import type { Logger } from "../obs/log.ts";
import type { Metrics } from "../obs/metrics.ts";
import type { InfluxEndpoint } from "./influx_http.ts";

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
  /**
   * Requests in flight at most (default 4). Under a backlog the writer spreads batches over
   * this many lanes by series, one request per lane, so a series' writes stay in order; 1 =
   * one request at a time.
   */
  maxInFlight?: number;
  /**
   * Points buffered before `full` asks the caller to hold back (default 200 000), queued and
   * in flight together.
   */
  maxBuffer?: number;
  /** First retry delay (default 100 ms). */
  minBackoffMs?: number;
  /** Longest retry delay (default 10 000 ms). */
  maxBackoffMs?: number;
  /** Timeout of each request (default 10 000 ms). */
  timeoutMs?: number;
  /** HTTP client of the requests (one trusting `INFLUX_CA`); default: `fetch`'s own. */
  client?: Deno.HttpClient;
  /** Logger; the token is never logged. */
  logger: Logger;
  /** Node metrics (`influx*`). */
  metrics: Metrics;
}

/** The writer's settings: every default filled in, every number checked. */
export interface InfluxSettings extends InfluxEndpoint {
  batchSize: number;
  flushIntervalMs: number;
  maxBuffer: number;
  maxInFlight: number;
  minBackoffMs: number;
  maxBackoffMs: number;
}

/** `opts` with defaults; throws a `RangeError` naming the first number out of range. */
export function settingsOf(opts: InfluxWriterOptions): InfluxSettings {
  // checked in this order, so the error names the same option as always
  const batchSize = positive(opts.batchSize, 5000, "batchSize");
  const flushIntervalMs = positive(opts.flushIntervalMs, 100, "flushIntervalMs", true);
  const maxBuffer = positive(opts.maxBuffer, 200_000, "maxBuffer");
  const minBackoffMs = positive(opts.minBackoffMs, 100, "minBackoffMs", true);
  const maxBackoffMs = Math.max(minBackoffMs, positive(opts.maxBackoffMs, 10_000, "maxBackoffMs"));
  const timeoutMs = positive(opts.timeoutMs, 10_000, "timeoutMs");
  const maxInFlight = positive(opts.maxInFlight, 4, "maxInFlight");
  if (!Number.isInteger(maxInFlight) || maxInFlight > 64) {
    throw new RangeError(
      `Cannot create InfluxWriter: maxInFlight must be an integer from 1 to 64, got ${maxInFlight}`,
    );
  }
  return {
    url: opts.url,
    api: opts.api,
    db: opts.db ?? "twinmill",
    token: opts.token,
    org: opts.org,
    bucket: opts.bucket,
    client: opts.client,
    batchSize,
    flushIntervalMs,
    maxBuffer,
    maxInFlight,
    minBackoffMs,
    maxBackoffMs,
    timeoutMs,
  };
}

function positive(v: number | undefined, dflt: number, name: string, zeroOk = false): number {
  if (v === undefined) return dflt;
  if (!Number.isFinite(v) || v < 0 || (!zeroOk && v === 0)) {
    throw new RangeError(`Cannot create InfluxWriter: ${name} must be a positive number, got ${v}`);
  }
  return v;
}
