/**
 * Log lines limited per key: at most one per key per minute, so one misbehaving twin cannot
 * flood the log.
 * @module
 */
import type { Clock } from "./clock.ts";

/** Keys seen at most this many, then forgotten all at once. */
const MAX_KEYS = 10_000;

/** Says whether a line keyed `key` may be logged now. */
export class LogLimiter {
  readonly #clock: Clock;
  readonly #last = new Map<string, number>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** True at most once per `key` per minute. */
  allow(key: string): boolean {
    const now = this.#clock.now();
    if ((this.#last.get(key) ?? -Infinity) + 60_000 > now) return false;
    if (this.#last.size > MAX_KEYS) this.#last.clear();
    this.#last.set(key, now);
    return true;
  }
}
