/**
 * A small seeded pseudo-random generator for the factory simulator: the same seed gives the
 * same plant, the same signals and the same fault schedule, so tests need no sleeping and
 * no luck.
 * @module
 */

/** A seeded source of random numbers. */
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Standard normal (mean 0, standard deviation 1). */
  normal(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
}

/**
 * A 32-bit seed derived from any parts (FNV-1a over their text), to give every device and
 * every concern (signals, faults) its own independent stream.
 *
 * @example
 * ```ts
 * const r = rng(seedOf(42, "faults"));
 * ```
 */
export function seedOf(...parts: Array<string | number>): number {
  let h = 0x811c9dc5;
  for (const ch of parts.join("\u0000")) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Mulberry32: fast, 32 bits of state, good enough for signals and schedules (not crypto). */
export function rng(seed: number): Rng {
  let s = seed >>> 0;
  let spare: number | undefined;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    normal() {
      // Box–Muller, keeping the second value of each pair
      if (spare !== undefined) {
        const v = spare;
        spare = undefined;
        return v;
      }
      const u = 1 - next(); // (0, 1]: log is finite
      const r = Math.sqrt(-2 * Math.log(u));
      const a = 2 * Math.PI * next();
      spare = r * Math.sin(a);
      return r * Math.cos(a);
    },
    int(n) {
      return Math.floor(next() * n);
    },
  };
}
