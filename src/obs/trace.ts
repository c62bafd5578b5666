/**
 * Trace context (W3C Trace Context): a trace id and a request id follow a request from the
 * HTTP gateway (or a batch of MQTT messages) across async calls on one node — through
 * `AsyncLocalStorage` — and to other nodes in NATS headers (`traceparent`, `x-request-id`).
 * Log lines written inside a context carry its `traceId` and `requestId`, so one grep finds
 * every line a request caused on every node.
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";

/** What a log line written in this context carries. */
export interface TraceContext {
  /** 32 lower-case hex digits. */
  traceId: string;
  /** 16 hex digits: the caller's span (this hop's parent). */
  spanId: string;
  /** The gateway's request id (`X-Request-Id`), if the context began with one. */
  requestId?: string;
}

const storage = new AsyncLocalStorage<TraceContext>();

function hex(bytes: number): string {
  const b = new Uint8Array(bytes);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** A fresh span id (16 hex digits). */
export const newSpanId = (): string => hex(8);

/** The context of the code running now, if any. */
export function currentTrace(): TraceContext | undefined {
  return storage.getStore();
}

/** Run `fn` inside `ctx` (every async continuation of it sees `ctx`). */
export function withTrace<T>(ctx: TraceContext, fn: () => T): T {
  return storage.run(ctx, fn);
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;

/**
 * The context a `traceparent` header continues (a new span of the caller's trace), or a new
 * trace when the header is missing or invalid (all-zero ids are invalid).
 */
export function continueTrace(
  traceparent: string | null | undefined,
  requestId?: string,
): TraceContext {
  const m = traceparent ? TRACEPARENT.exec(traceparent.trim().toLowerCase()) : null;
  const valid = m && !/^0+$/.test(m[1]) && !/^0+$/.test(m[2]);
  return { traceId: valid ? m[1] : hex(16), spanId: newSpanId(), requestId };
}

/** The `traceparent` header value for calls made from `ctx`. */
export function traceparentOf(ctx: TraceContext): string {
  return `00-${ctx.traceId}-${ctx.spanId}-01`;
}
