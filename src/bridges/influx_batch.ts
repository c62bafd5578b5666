/**
 * One batch of the InfluxDB writer: its points' lines, encoded to UTF-8 as they are queued into
 * one growing buffer (the request body), and the one promise its points wait on.
 *
 * Why bytes rather than an array of line strings: a batch lives until InfluxDB accepted it,
 * long enough for its strings to be promoted out of the young generation; the garbage
 * collector then copied and marked every line (most of the writer's CPU, see "InfluxDB writer
 * profile" in bench/README.md). A buffer is one object, and each line string dies young.
 * @module
 */

const encoder = new TextEncoder();
const NEWLINE = 10;
/** First capacity of a batch's buffer (bytes); it doubles as needed. */
const FIRST_CAPACITY = 16 * 1024;

/**
 * The promise the points of one batch got from `write()`: one per batch, not one per point.
 * It resolves once every part of the batch is settled (`parts` > 1 after a split).
 */
export interface Settlement {
  promise: Promise<void>;
  resolve: () => void;
  parts: number;
}

/** Lines in queue order, `\n`-separated in {@linkcode body}; `since` = first queued (ms). */
export class Batch {
  /** When its first point was queued (ms since the epoch); 0 = due at once. */
  readonly since: number;
  /** Settled when this batch (and every other part of it, after a split) is. */
  readonly settled: Settlement;
  #buf: Uint8Array<ArrayBuffer>;
  #len = 0;
  /** Byte offset where each line ends (exclusive). */
  #ends: number[] = [];

  /** An empty batch (`settled`: shared with the other half of a split). */
  constructor(since: number, settled?: Settlement) {
    this.since = since;
    if (settled) {
      this.settled = settled;
    } else {
      const { promise, resolve } = Promise.withResolvers<void>();
      this.settled = { promise, resolve, parts: 1 };
    }
    this.#buf = new Uint8Array(FIRST_CAPACITY);
  }

  /** Lines in this batch. */
  get size(): number {
    return this.#ends.length;
  }

  /** Appends one line (no newline in it). */
  push(line: string): void {
    const need = this.#len + 1 + line.length * 3; // UTF-8: at most 3 bytes per UTF-16 unit
    if (need > this.#buf.length) this.#grow(need);
    if (this.#len > 0) this.#buf[this.#len++] = NEWLINE;
    this.#len += encoder.encodeInto(line, this.#buf.subarray(this.#len)).written;
    this.#ends.push(this.#len);
  }

  /** The request body: every line, `\n`-separated (a view, valid until the next push). */
  body(): Uint8Array<ArrayBuffer> {
    return this.#buf.subarray(0, this.#len);
  }

  /** Its first and second half (same settlement, one more part), for a batch too large. */
  halves(): [Batch, Batch] {
    const half = this.#ends.length >> 1;
    this.settled.parts++;
    // The second half is due at once (since 0), right after the first.
    return [this.#part(0, half, this.since), this.#part(half, this.#ends.length, 0)];
  }

  #part(from: number, to: number, since: number): Batch {
    const b = new Batch(since, this.settled);
    const start = from === 0 ? 0 : this.#ends[from - 1] + 1;
    b.#buf = this.#buf.slice(start, this.#ends[to - 1]);
    b.#len = b.#buf.length;
    b.#ends = this.#ends.slice(from, to).map((e) => e - start);
    return b;
  }

  #grow(need: number): void {
    let cap = this.#buf.length * 2;
    while (cap < need) cap *= 2;
    const buf = new Uint8Array(cap);
    buf.set(this.#buf.subarray(0, this.#len));
    this.#buf = buf;
  }
}
