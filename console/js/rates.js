/**
 * Event rates per group (e.g. per site and line) over a sliding window, in per-second
 * buckets: bounded memory whatever the rate.
 * @module
 */

/** Seconds the rate is averaged over. */
export const WINDOW_S = 10;

/** Counts per group and second; `rate(key)` is events per second over the last window. */
export class GroupRates {
  /** @type {Map<string, Map<number, number>>} */
  #counts = new Map();

  /** Count one event of `key` at `now` (ms). */
  add(key, now = Date.now()) {
    const s = Math.floor(now / 1000);
    let m = this.#counts.get(key);
    if (!m) this.#counts.set(key, m = new Map());
    m.set(s, (m.get(s) ?? 0) + 1);
    for (const k of m.keys()) if (k <= s - WINDOW_S) m.delete(k);
  }

  /** Events per second of `key` over the last {@linkcode WINDOW_S} whole seconds. */
  rate(key, now = Date.now()) {
    const s = Math.floor(now / 1000);
    let n = 0;
    for (const [k, c] of this.#counts.get(key) ?? []) if (k < s && k >= s - WINDOW_S) n += c;
    return n / WINDOW_S;
  }
}
