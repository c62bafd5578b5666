/**
 * An injected clock, so every timer in the runtime and the twin rules can be driven by tests
 * without sleeping.
 * @module
 */

/** Timer handle. */
export type TimerId = unknown;

/** Time and timers. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerId;
  setInterval(fn: () => void, ms: number): TimerId;
  clear(id: TimerId): void;
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clear: (id) => clearTimeout(id as number),
};

/**
 * A clock that only moves when told to. Due timers fire, in order, inside `advance`.
 *
 * @example
 * ```ts
 * const clock = new ManualClock(0);
 * clock.setTimeout(() => console.log("fired"), 100);
 * await clock.advance(100); // logs "fired"
 * ```
 */
export class ManualClock implements Clock {
  #now: number;
  #next = 1;
  #timers = new Map<number, { at: number; every: number; fn: () => void }>();
  constructor(start = 0) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  setTimeout(fn: () => void, ms: number): TimerId {
    const id = this.#next++;
    this.#timers.set(id, { at: this.#now + ms, every: 0, fn });
    return id;
  }
  setInterval(fn: () => void, ms: number): TimerId {
    const id = this.#next++;
    this.#timers.set(id, { at: this.#now + ms, every: Math.max(1, ms), fn });
    return id;
  }
  clear(id: TimerId): void {
    this.#timers.delete(id as number);
  }
  /** Move time forward by `ms`, firing due timers and letting their async work settle. */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      let due: [number, { at: number; every: number; fn: () => void }] | undefined;
      for (const e of this.#timers) if (e[1].at <= end && (!due || e[1].at < due[1].at)) due = e;
      if (!due) break;
      const [id, t] = due;
      this.#now = Math.max(this.#now, t.at);
      if (t.every) t.at += t.every;
      else this.#timers.delete(id);
      t.fn();
      await settle();
    }
    this.#now = end;
    await settle();
  }
}

/** Let pending promise callbacks run (a few macrotask turns). */
export async function settle(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((r) => setTimeout(r, 0));
}
