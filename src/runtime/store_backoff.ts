/**
 * Backoff of the commit queue while the snapshot store fails for every twin (down, full):
 * commits wait and retry, 200 ms doubling to 5 s, on the injected clock; the failure is
 * logged the first time and then every 30 s, the recovery once.
 * @module
 */
import type { Clock } from "./clock.ts";
import type { Logger } from "../obs/log.ts";
import { retryDelay } from "./quarantine.ts";

/** Counts consecutive failed commits and paces their retries. */
export class StoreBackoff {
  readonly #clock: Clock;
  readonly #log: Logger;
  /** Consecutive commits that failed for the whole store. */
  #failures = 0;
  /** When the last "cannot persist" line was logged (ms). */
  #loggedAt = 0;

  constructor(clock: Clock, logger: Logger) {
    this.#clock = clock;
    this.#log = logger;
  }

  /** The store failed for every twin (`what`, for `count` items): log it, back off more. */
  failed(what: string, count: number, err: unknown): void {
    this.#failures++;
    const now = this.#clock.now();
    if (this.#failures === 1 || now - this.#loggedAt >= 30_000) {
      this.#loggedAt = now;
      this.#log.error(`${what}; will retry`, { count, failures: this.#failures, err });
    }
  }

  /** Wait before the next try. */
  wait(): Promise<void> {
    const ms = retryDelay(this.#failures);
    return new Promise((resolve) => this.#clock.setTimeout(resolve, ms));
  }

  /** A commit went through: log the recovery if the store had failed. */
  succeeded(): void {
    if (this.#failures === 0) return;
    this.#log.info("the snapshot store takes commits again", { failedCommits: this.#failures });
    this.#failures = 0;
  }
}
