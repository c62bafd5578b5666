/**
 * The broker's limits: connections at once, each connection's message rate, and how many
 * authentication failures a source address or an identity may have before its connects are
 * refused unchecked.
 * @module
 */
import type { Client } from "aedes";
import { RateLimiter } from "../../security/rate_limit.ts";

/** True when `live` connections leave no room for another (CONNACK 3). */
export function connectionsFull(live: number, max: number | undefined): boolean {
  return max !== undefined && live >= max;
}

/**
 * Each connection's message rate. Past it the connection is tripped: that message and later
 * ones are never acknowledged (the device resends them after reconnecting), and the connection
 * closes once the messages before it are durable and acknowledged.
 */
export class MessageRate {
  /** Connections over their message rate, closing. */
  readonly #tripped = new WeakSet<Client>();
  /** Messages of a connection being made durable (closed over the rate only after them). */
  readonly #inflight = new WeakMap<Client, Set<Promise<void>>>();

  constructor(readonly limiter: RateLimiter) {}

  /** True when the connection went over its rate and is closing. */
  tripped(c: Client): boolean {
    return this.#tripped.has(c);
  }

  /** Take a token for one message: true when it is over the rate (then call `trip`). */
  over(c: Client): boolean {
    return this.limiter.take(c.id) > 0;
  }

  /** Stop acknowledging the connection and close it once its messages in flight settle. */
  trip(c: Client): void {
    this.#tripped.add(c);
    Promise.allSettled([...(this.#inflight.get(c) ?? [])]).then(() =>
      // deno-lint-ignore no-explicit-any
      (c as any).conn?.end?.()
    );
  }

  /** A message of the connection is being made durable. */
  track(c: Client, submitted: Promise<void>): void {
    let set = this.#inflight.get(c);
    if (!set) this.#inflight.set(c, set = new Set());
    const s = set;
    s.add(submitted);
    submitted.finally(() => s.delete(submitted)).catch(() => {});
  }
}

/** Authentication failures allowed per source address and per identity. */
export interface AuthFailureRate {
  source: RateLimiter;
  identity: RateLimiter;
}

/** Which limit refused an attempt. */
export type ThrottledBy = "source" | "identity";

/**
 * Authentication failure throttling. Every attempt takes a failure token up front (so
 * concurrent guesses cannot all pass before the first fails); one that does not fail gives it
 * back. Defaults: a burst of 50 then 5 a second per source, a burst of 10 then 1 a second per
 * identity.
 */
export class AuthThrottle {
  readonly #rate: AuthFailureRate;

  constructor(rate?: AuthFailureRate) {
    this.#rate = rate ?? {
      source: new RateLimiter({ rate: 5, burst: 50, maxKeys: 50_000 }),
      identity: new RateLimiter({ rate: 1, burst: 10, maxKeys: 50_000 }),
    };
  }

  /**
   * Take the failure tokens of one attempt from `source` as `who` (`undefined`: no username):
   * null when it may be checked (tokens held until `refund` or a failure), else the limit that
   * refuses it (nothing held then).
   */
  take(source: string, who: string | undefined): ThrottledBy | null {
    if (this.#rate.source.take(source) > 0) return "source";
    if (who !== undefined && this.#rate.identity.take(who) > 0) {
      this.#rate.source.refund(source);
      return "identity";
    }
    return null;
  }

  /** An attempt that did not fail gives its tokens back. */
  refund(source: string, who: string | undefined): void {
    this.#rate.source.refund(source);
    if (who !== undefined) this.#rate.identity.refund(who);
  }
}
