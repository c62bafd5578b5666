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
/** Least first capacity of a batch's buffer (bytes); it doubles as needed. */
const MIN_CAPACITY = 16 * 1024;
/** Lines joined in a string before they are encoded together (one `encodeInto` per group). */
const GROUP = 64;

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
  /** Byte offset where each encoded line ends (exclusive). */
  #ends: number[] = [];
  /** Lines not encoded yet, each preceded by `\n` unless first in the batch. */
  #pending = "";
  /** Where each line of `#pending` ends (UTF-16 offset in it). */
  #pendingEnds: number[] = [];

  /**
   * An empty batch (`settled`: shared with the other half of a split); `capacity`: the bytes
   * it is expected to take (e.g. the size of the last full batch), to spare regrowing.
   */
  constructor(since: number, settled?: Settlement, capacity = MIN_CAPACITY) {
    this.since = since;
    if (settled) {
      this.settled = settled;
    } else {
      const { promise, resolve } = Promise.withResolvers<void>();
      this.settled = { promise, resolve, parts: 1 };
    }
    this.#buf = new Uint8Array(Math.max(MIN_CAPACITY, capacity));
  }

  /** Lines in this batch. */
  get size(): number {
    return this.#ends.length + this.#pendingEnds.length;
  }

  /** About how many bytes its body takes (exact for ASCII). */
  get bytes(): number {
    return this.#len + this.#pending.length;
  }

  /** Appends one line (no newline in it). */
  push(line: string): void {
    if (this.#len > 0 || this.#pending !== "") this.#pending += "\n";
    this.#pending += line;
    if (this.#pendingEnds.push(this.#pending.length) >= GROUP) this.#encode();
  }

  /** The request body: every line, `\n`-separated (a view, valid until the next push). */
  body(): Uint8Array<ArrayBuffer> {
    this.#encode();
    return this.#buf.subarray(0, this.#len);
  }

  /** Encodes the pending lines into the buffer. */
  #encode(): void {
    const text = this.#pending;
    if (text === "") return;
    const start = this.#len;
    // room for ASCII (the usual case); more when a line holds other characters
    if (start + text.length > this.#buf.length) this.#grow(start + text.length);
    let { read, written } = encoder.encodeInto(text, this.#buf.subarray(start));
    if (read < text.length) {
      const rest = text.slice(read);
      this.#grow(start + written + rest.length * 3); // UTF-8: at most 3 bytes per UTF-16 unit
      written += encoder.encodeInto(rest, this.#buf.subarray(start + written)).written;
    }
    if (written === text.length) {
      // ASCII (the usual case): one byte per unit
      for (const e of this.#pendingEnds) this.#ends.push(start + e);
    } else {
      let from = 0;
      let at = start;
      for (const e of this.#pendingEnds) {
        at += encoder.encode(text.slice(from, e)).length;
        this.#ends.push(at);
        from = e;
      }
    }
    this.#len = start + written;
    this.#pending = "";
    this.#pendingEnds = [];
  }

  /** Its first and second half (same settlement, one more part), for a batch too large. */
  halves(): [Batch, Batch] {
    this.#encode();
    const half = this.#ends.length >> 1;
    this.settled.parts++;
    // The second half is due at once (since 0), right after the first.
    return [this.#part(0, half, this.since), this.#part(half, this.#ends.length, 0)];
  }

  /**
   * The lines of `batches` (in queue order) spread over `lanes` new batches by series: a line
   * goes to lane `hash(series) % lanes`, where its series is the line up to its first unescaped
   * space (measurement and tag set), so every line of one series lands in the same lane, in
   * queue order. Empty lanes are left out. The parts share one settlement; when every part is
   * settled, each of `batches` is.
   */
  static spread(batches: Batch[], lanes: number, since: number): (Batch | undefined)[] {
    const { promise, resolve } = Promise.withResolvers<void>();
    const settled: Settlement = { promise, parts: 0, resolve };
    settled.resolve = () => {
      for (const b of batches) if (--b.settled.parts === 0) b.settled.resolve();
      resolve();
    };
    // first pass: each line's lane, and the bytes of each lane
    let lines = 0;
    for (const b of batches) {
      b.#encode();
      lines += b.#ends.length;
    }
    const laneOf = new Uint8Array(lines);
    const sizes = new Array<number>(lanes).fill(0);
    const counts = new Array<number>(lanes).fill(0);
    let n = 0;
    for (const b of batches) {
      const buf = b.#buf;
      let start = 0;
      for (const end of b.#ends) {
        const lane = seriesHash(buf, start, end) % lanes;
        laneOf[n++] = lane;
        sizes[lane] += end - start + 1;
        counts[lane]++;
        start = end + 1;
      }
    }
    // second pass: copy each line to its lane
    const bufs = sizes.map((size) => new Uint8Array(size));
    const ends = counts.map((c) => new Array<number>(c));
    const at = new Array<number>(lanes).fill(0);
    const k = new Array<number>(lanes).fill(0);
    n = 0;
    for (const b of batches) {
      const src = b.#buf;
      let start = 0;
      for (const end of b.#ends) {
        const lane = laneOf[n++];
        const dst = bufs[lane];
        let a = at[lane];
        if (a > 0) dst[a++] = 10; // "\n"
        dst.set(src.subarray(start, end), a);
        a += end - start;
        ends[lane][k[lane]++] = a;
        at[lane] = a;
        start = end + 1;
      }
    }
    return bufs.map((buf, lane) => {
      if (counts[lane] === 0) return undefined;
      settled.parts++;
      const part = new Batch(since, settled, 0);
      part.#buf = buf;
      part.#len = at[lane];
      part.#ends = ends[lane];
      return part;
    });
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

/**
 * A hash of a line's series: `src[from..to)` up to its first unescaped space (a backslash
 * escapes the byte after it), unsigned.
 */
function seriesHash(src: Uint8Array, from: number, to: number): number {
  let h = 0;
  for (let i = from; i < to; i++) {
    let c = src[i];
    if (c === 92) {
      h = (h * 31 + c) | 0;
      c = src[++i];
    } else if (c === 32) {
      break;
    }
    h = (h * 31 + c) | 0;
  }
  return h >>> 0;
}
