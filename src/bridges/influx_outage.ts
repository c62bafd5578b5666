/**
 * The InfluxDB writer's view of an outage: retry delays (exponential backoff with jitter, or
 * the server's `Retry-After` within bounds), a rate-limited warning while InfluxDB fails, and
 * one line when it is reachable again.
 * @module
 */
import type { Logger } from "../obs/log.ts";
import type { Retry } from "./influx_http.ts";

const WARN_EVERY_MS = 10_000;

/** Backoff and outage logging of one writer. */
export class InfluxOutage {
  readonly #log: Logger;
  readonly #minBackoff: number;
  readonly #maxBackoff: number;
  readonly #redact: (s: string) => string;
  #downSince: number | undefined;
  #lastWarnAt = -Infinity;
  #failuresSinceWarn = 0;

  /** Delays lie in `[minBackoff, maxBackoff]`; `redact` cleans reasons before they are logged. */
  constructor(log: Logger, minBackoff: number, maxBackoff: number, redact: (s: string) => string) {
    this.#log = log;
    this.#minBackoff = minBackoff;
    this.#maxBackoff = maxBackoff;
    this.#redact = redact;
  }

  /**
   * How long to wait before retrying after `out`, the `attempt`-th failure in a row (from 0) of
   * one sender: the server's `Retry-After` within bounds, else exponential backoff with jitter.
   */
  delay(out: Retry, attempt: number): number {
    if (out.retryAfterMs !== undefined) {
      return Math.min(this.#maxBackoff, Math.max(this.#minBackoff, out.retryAfterMs));
    }
    const base = Math.min(this.#maxBackoff, this.#minBackoff * 2 ** Math.min(attempt, 30));
    return Math.max(this.#minBackoff, Math.round(base / 2 + Math.random() * (base / 2)));
  }

  /** Rate-limited warning: at most one line per 10 s, with the failures since the last one. */
  failed(out: Retry, retrying: boolean, buffered: number, delay?: number): void {
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
        buffered,
        retryInMs: delay,
      },
    );
    this.#lastWarnAt = now;
    this.#failuresSinceWarn = 0;
  }

  /** InfluxDB answered: log the end of an outage, if there was one. */
  recovered(buffered: number): void {
    if (this.#downSince === undefined) return;
    this.#log.info("InfluxDB reachable again", {
      downMs: Date.now() - this.#downSince,
      pointsWaited: buffered,
    });
    this.#downSince = undefined;
  }
}
