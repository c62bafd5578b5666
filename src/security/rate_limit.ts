/**
 * Token buckets by key (API key, JWT subject, MQTT connection), bounded in number: the least
 * recently used bucket is dropped past `maxKeys` (a dropped key simply starts full again).
 * @module
 */

/** Options of {@linkcode RateLimiter}. */
export interface RateLimiterOptions {
  /** Tokens per second. */
  rate: number;
  /** Bucket size (default 2 s worth). */
  burst?: number;
  /** Buckets kept (default 100,000). */
  maxKeys?: number;
  now?: () => number;
}

/** Per-key token buckets. */
export class RateLimiter {
  readonly #b = new Map<string, { tokens: number; at: number }>();
  readonly #burst: number;
  /** The most recently used key (the last in `#b`). */
  #newest: string | undefined;
  readonly #now: () => number;
  constructor(readonly o: RateLimiterOptions) {
    this.#burst = o.burst ?? Math.max(1, o.rate * 2);
    this.#now = o.now ?? (() => performance.now());
  }

  /** Give back a token taken for `key` (e.g. taken for an attempt that turned out fine). */
  refund(key: string): void {
    const b = this.#b.get(key);
    if (b) b.tokens = Math.min(this.#burst, b.tokens + 1);
  }

  /** Take one token for `key`: 0 when allowed, else the seconds until one is available. */
  take(key: string): number {
    const now = this.#now();
    let b = this.#b.get(key);
    if (b) {
      // re-insert (Map order is the LRU order), unless it is the newest already: one caller
      // in a row (a client under load) would otherwise churn the map on every request
      if (key !== this.#newest) {
        this.#b.delete(key);
        this.#b.set(key, b);
      }
      b.tokens = Math.min(this.#burst, b.tokens + (now - b.at) / 1000 * this.o.rate);
      b.at = now;
    } else {
      b = { tokens: this.#burst, at: now };
      if (this.#b.size >= (this.o.maxKeys ?? 100_000)) {
        this.#b.delete(this.#b.keys().next().value!);
      }
      this.#b.set(key, b);
    }
    this.#newest = key;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.o.rate));
  }
}
