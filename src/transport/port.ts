/**
 * The transport port: subject-based publish/subscribe and request/reply, NATS-style subjects
 * (`.`-separated tokens, `*` one token, `>` the rest). Adapters: in-process (single node) and
 * NATS (cluster). Subjects are built only in `subjects.ts`.
 * @module
 */

/** A delivered message. */
export interface Message {
  subject: string;
  data: unknown;
  /** Reply to a request (no-op for plain publishes). */
  respond(data: unknown): void;
}

/** A live subscription. */
export interface Subscription extends Disposable {
  unsubscribe(): void;
}

/** Raised when a request has no responder or times out. */
export class TransportError extends Error {
  override name = "TransportError";
  constructor(readonly code: "no_responders" | "timeout" | "closed", message: string) {
    super(message);
  }
}

/** The transport. Payloads are JSON-serializable values. */
export interface Transport extends AsyncDisposable {
  publish(subject: string, data: unknown): void;
  /** Deliver matching messages to `cb`, synchronously in publish order. */
  subscribe(subject: string, cb: (m: Message) => void): Subscription;
  request(subject: string, data: unknown, opts?: { timeoutMs?: number }): Promise<unknown>;
  /**
   * Ask every subscriber of `subject` and collect the replies that come within `maxWaitMs`
   * (none: an empty array, never an error). It ends early once `until(reply)` holds for a
   * reply, and an adapter that knows every subscriber has replied (in-process) ends then.
   */
  gather(subject: string, data: unknown, opts: GatherOptions): Promise<unknown[]>;
}

/** Options of {@linkcode Transport.gather}. */
export interface GatherOptions {
  /** Longest wait for replies (ms). */
  maxWaitMs: number;
  /** Stop at the first reply for which this holds (it is the last one returned). */
  until?(reply: unknown): boolean;
}
