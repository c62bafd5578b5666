/**
 * Bounds the audit entries of refusals. Anyone who can reach a listener can cause refusals
 * (a wrong provisioning key, a bad device token, a missing API key), and each one is an
 * audit entry; unbounded, a flood of them would rotate the real history out of the audit
 * log. Refused and failed entries share one token bucket (node-wide: an attacker picks the
 * actor name, so a per-actor bucket would not bound anything); past it they are counted, not
 * written, and one `audit.suppressed` entry at most every 10 s says how many were left out.
 * Successful actions are always written.
 *
 * @example
 * ```ts
 * const gate = new DenialGate({ perSecond: 100, burst: 1000 });
 * for (const e of gate.admit(entry)) sink.write(e);
 * ```
 * @module
 */
import type { AuditInput } from "./audit_entry.ts";
import { RateLimiter } from "./rate_limit.ts";

/** Options of {@linkcode DenialGate}. */
export interface DenialGateOptions {
  /** Refusal entries written per second, sustained. */
  perSecond: number;
  /** Refusal entries written in a burst. */
  burst: number;
  /** ms since the epoch. */
  now?: () => number;
  /** Called for every entry left out (a metric). */
  onSuppressed?: () => void;
  /** Called when a summary is written (a log line). */
  onSummary?: (entries: number, sinceMs: number) => void;
}

const SUMMARY_EVERY_MS = 10_000;

/** The node's bound: refusal entries written per second, sustained, and in a burst. */
export const NODE_DENIAL_LIMIT = { perSecond: 50, burst: 1000 } as const;

/** Decides which audit entries are written. */
export class DenialGate {
  readonly #o: DenialGateOptions;
  readonly #now: () => number;
  /** One bucket for every refusal of the node (key `""`). */
  readonly #bucket: RateLimiter;
  #suppressed = 0;
  #since = 0;
  #lastSummary = -Infinity;

  constructor(o: DenialGateOptions) {
    if (!(o.perSecond > 0 && o.burst >= 1)) throw new RangeError("perSecond > 0 and burst >= 1");
    this.#o = o;
    this.#now = o.now ?? Date.now;
    this.#bucket = new RateLimiter({ rate: o.perSecond, burst: o.burst, now: this.#now });
  }

  /** Entries left out since the last summary. */
  get suppressed(): number {
    return this.#suppressed;
  }

  /** The entries to write for `e`: none (left out), `[e]`, or a summary first and then `e`. */
  admit(e: AuditInput): AuditInput[] {
    if (e.result === "ok") return [e];
    const now = this.#now();
    if (this.#bucket.take("") > 0) {
      if (this.#suppressed++ === 0) this.#since = now;
      this.#o.onSuppressed?.();
      return [];
    }
    if (this.#suppressed === 0 || now - this.#lastSummary < SUMMARY_EVERY_MS) return [e];
    const summary: AuditInput = {
      ts: now,
      actor: "twinmill",
      action: "audit.suppressed",
      result: "denied",
      detail: { entries: this.#suppressed, since: new Date(this.#since).toISOString() },
    };
    this.#o.onSummary?.(this.#suppressed, this.#since);
    this.#suppressed = 0;
    this.#lastSummary = now;
    return [summary, e];
  }
}
