/**
 * Latency histogram with bounded memory: logarithmic buckets 2 % wide from 0.01 ms to ten
 * minutes, so percentiles are within 2 % whatever the number of samples; the maximum is exact.
 * @module
 */

const MIN_MS = 0.01;
const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);
/** Buckets: enough for 0.01 ms × 1.02^1024 ≈ 6.3 × 10^6 ms (over an hour). */
const BUCKETS = 1024;

function bucketOf(ms: number): number {
  if (!(ms > MIN_MS)) return 0;
  return Math.min(BUCKETS - 1, Math.ceil(Math.log(ms / MIN_MS) / LOG_GROWTH));
}

/** Upper bound of bucket `i` in ms. */
function upper(i: number): number {
  return MIN_MS * GROWTH ** i;
}

/**
 * Latencies in ms.
 *
 * @example
 * ```ts
 * const h = new Histogram();
 * h.record(1.5);
 * h.percentile(50); // ≈ 1.5 (within 2 %)
 * ```
 */
export class Histogram {
  #counts = new Uint32Array(BUCKETS);
  #count = 0;
  #max = 0;

  /** Samples recorded. */
  get count(): number {
    return this.#count;
  }

  /** Largest sample (exact), 0 when empty. */
  get max(): number {
    return this.#max;
  }

  record(ms: number): void {
    this.#counts[bucketOf(ms)]++;
    this.#count++;
    if (ms > this.#max) this.#max = ms;
  }

  /** Add another histogram's samples to this one. */
  add(other: Histogram): void {
    for (let i = 0; i < BUCKETS; i++) this.#counts[i] += other.#counts[i];
    this.#count += other.#count;
    if (other.#max > this.#max) this.#max = other.#max;
  }

  /** Forget every sample. */
  reset(): void {
    this.#counts.fill(0);
    this.#count = 0;
    this.#max = 0;
  }

  /** The `p`-th percentile (0–100) in ms, never above the maximum; 0 when empty. */
  percentile(p: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.#count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i];
      if (seen >= rank) return i === BUCKETS - 1 ? this.#max : Math.min(upper(i), this.#max);
    }
    return this.#max;
  }
}
