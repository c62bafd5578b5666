/**
 * Trace context (W3C Trace Context): a trace id and a request id follow a request from the
 * HTTP gateway (or a batch of MQTT messages) across async calls on one node — through
 * `AsyncLocalStorage` — and to other nodes in NATS headers (`traceparent`, `x-request-id`).
 * Log lines written inside a context carry its `traceId` and `requestId`, so one grep finds
 * every line a request caused on every node.
 *
 * Cheap on the hot path: a context only keeps the caller's header; the trace id is parsed or
 * made the first time something reads it (a log line, a request to another node). Most
 * requests never need it. New ids are a random per-process prefix and a counter: unique, and
 * never all zeros.
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";

/** What a log line written in this context carries. */
export interface TraceContext {
  /** 32 lower-case hex digits. */
  readonly traceId: string;
  /** 16 hex digits: this hop's span (the parent of the calls it makes). */
  readonly spanId: string;
  /** The gateway's request id (`X-Request-Id`), if the context began with one. */
  readonly requestId?: string;
}

const storage = new AsyncLocalStorage<TraceContext>();

function hex(bytes: number): string {
  const b = new Uint8Array(bytes);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Random per process; ids are this prefix and a counter. */
const TRACE_PREFIX = hex(8);
const SPAN_PREFIX = hex(4);
let counter = 0;
const next = () => (++counter).toString(16).padStart(8, "0");

/** A fresh trace id (32 hex digits). */
export const newTraceId = (): string => `${TRACE_PREFIX}${next().padStart(16, "0")}`;
/** A fresh span id (16 hex digits). */
export const newSpanId = (): string => `${SPAN_PREFIX}${next().slice(-8)}`;

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;

/** The context a request starts: continues the caller's `traceparent` when it is valid. */
class Continued implements TraceContext {
  #header: string | null | undefined;
  #traceId?: string;
  #spanId?: string;
  constructor(header: string | null | undefined, readonly requestId?: string) {
    this.#header = header;
  }
  get traceId(): string {
    if (this.#traceId === undefined) {
      const m = this.#header ? TRACEPARENT.exec(this.#header.trim().toLowerCase()) : null;
      const valid = m && !/^0+$/.test(m[1]) && !/^0+$/.test(m[2]);
      this.#traceId = valid ? m[1] : newTraceId();
      this.#header = undefined;
    }
    return this.#traceId;
  }
  get spanId(): string {
    return this.#spanId ??= newSpanId();
  }
}

/** The code running now's context, if any. */
export function currentTrace(): TraceContext | undefined {
  return storage.getStore();
}

/** Run `fn` inside `ctx` (every async continuation of it sees `ctx`). */
export function withTrace<T>(ctx: TraceContext, fn: () => T): T {
  return storage.run(ctx, fn);
}

/**
 * The context a `traceparent` header continues (a new span of the caller's trace), or a new
 * trace when the header is missing or invalid (all-zero ids are invalid).
 */
export function continueTrace(
  traceparent: string | null | undefined,
  requestId?: string,
): TraceContext {
  return new Continued(traceparent, requestId);
}

/** The `traceparent` header value for calls made from `ctx`. */
export function traceparentOf(ctx: TraceContext): string {
  return `00-${ctx.traceId}-${ctx.spanId}-01`;
}
