/**
 * Backpressure of the twin host towards ingest: new input is held back while too many inbound
 * entries are unretired or the point sink is full, and released — without polling — when
 * entries retire or the sink has space again.
 * @module
 */
import type { AcceptGate } from "../bridges/ingest.ts";
import type { PointSink } from "../ports/point_sink.ts";

/** Options of a {@linkcode HostGate}. */
export interface HostGateOptions {
  /** Unretired inbound entries now. */
  pending(): number;
  /** Unretired inbound entries above which ingest is held back. Default 100,000. */
  maxPending?: number;
  points?: PointSink;
}

/** Whether the host takes new input, and when it will again. */
export class HostGate implements AcceptGate {
  readonly #o: HostGateOptions;
  /** Callers of `whenAccepting` waiting for ingest to go on. */
  #waiting: Array<() => void> = [];
  /** True while a `whenSpace` of the point sink is awaited. */
  #awaitingSpace = false;

  constructor(o: HostGateOptions) {
    this.#o = o;
  }

  /** False while ingest must hold back (too many unretired entries, or the point sink full). */
  canAccept(): boolean {
    return this.#o.pending() < (this.#o.maxPending ?? 100_000) && !this.#o.points?.full;
  }

  /** Resolves once `canAccept()` is true (at once if it is). */
  whenAccepting(): Promise<void> {
    if (this.canAccept()) return Promise.resolve();
    const p = new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.wake();
    return p;
  }

  /** Entries retired (or the sink has space): release the waiting callers if input may go on. */
  wake(): void {
    if (this.#waiting.length === 0) return;
    if (this.canAccept()) {
      for (const w of this.#waiting.splice(0)) w();
      return;
    }
    const sink = this.#o.points;
    if (!sink?.full || !sink.whenSpace || this.#awaitingSpace) return;
    this.#awaitingSpace = true;
    sink.whenSpace().then(() => {
      this.#awaitingSpace = false;
      this.wake();
    });
  }
}
