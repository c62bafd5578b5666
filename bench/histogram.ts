/**
 * A latency histogram for the benchmarks' load generators: buckets 1% wide, so that
 * processes can report it as JSON and the parent merges them (`bench/factory.ts`).
 * @module
 */

/** {@linkcode Histogram} as JSON: `[bucket, count]` pairs. */
export interface HistogramJson {
  buckets: [number, number][];
  count: number;
  max: number;
}

/** Bucket width: 1% (log scale). */
const STEP = Math.log(1.01);

/**
 * A latency histogram in buckets 1% wide from 1 µs up: a quantile is read as its bucket's
 * upper bound (at most the maximum), so within 1% of the exact value.
 */
export class Histogram {
  #counts = new Map<number, number>();
  count = 0;
  max = 0;

  /** Records one value, ms. */
  record(ms: number): void {
    const b = Math.ceil(Math.log(Math.max(1, ms * 1000)) / STEP);
    this.#counts.set(b, (this.#counts.get(b) ?? 0) + 1);
    this.count++;
    if (ms > this.max) this.max = ms;
  }

  /** Adds another histogram's counts. */
  merge(h: HistogramJson): void {
    for (const [b, c] of h.buckets) this.#counts.set(b, (this.#counts.get(b) ?? 0) + c);
    this.count += h.count;
    if (h.max > this.max) this.max = h.max;
  }

  /** The `q` quantile (0 < q ≤ 1), ms; 0 when empty. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (const b of [...this.#counts.keys()].sort((x, y) => x - y)) {
      seen += this.#counts.get(b)!;
      if (seen >= rank) return Math.min(Math.exp(b * STEP) / 1000, this.max);
    }
    return this.max;
  }

  toJSON(): HistogramJson {
    return { buckets: [...this.#counts], count: this.count, max: this.max };
  }
}
