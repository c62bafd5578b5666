/**
 * NATS transport (cluster mode): core NATS publish/subscribe and request/reply with JSON
 * payloads. Reconnects forever; nats.js resubscribes on the new server by itself.
 *
 * Delivery is core NATS, at most once: a publish made while the connection is down is
 * dropped (nats.js v3 clears its outbound buffer when it dials again). Anything that must
 * not be lost goes through JetStream, not through this port.
 * @module
 */
import {
  ClosedConnectionError,
  connect,
  type ConnectionOptions,
  DrainingConnectionError,
  headers,
  type Msg,
  type NatsConnection,
  NoRespondersError,
  RequestError,
  type Status,
  TimeoutError,
} from "@nats-io/transport-node";
import type { Logger } from "../obs/log.ts";
import {
  continueTrace,
  currentTrace,
  type TraceContext,
  traceparentOf,
  withTrace,
} from "../obs/trace.ts";
import { type Message, type Subscription, type Transport, TransportError } from "./port.ts";

/** Options of {@linkcode natsTransport}. */
export interface NatsTransportOptions {
  /** Server URLs: an array, or one string with comma-separated URLs. */
  servers: string | string[];
  /** Connection name shown by the server (`/connz`). */
  name?: string;
  logger: Logger;
  /** Longest wait for draining on dispose before the connection is closed (default 5000). */
  drainTimeoutMs?: number;
  /** Authentication and TLS (`user`/`pass`, `token`, `authenticator`, `tls`), passed on as is. */
  security?: Pick<ConnectionOptions, "user" | "pass" | "token" | "authenticator" | "tls">;
}

/** Drops user info (`user:pass@`, `token@`) from a URL-ish string before it is logged. */
export function redact(server: string): string {
  return server.replace(/^([a-z]+:\/\/)?[^@/]*@/i, "$1");
}

/**
 * Header of the start-up permission check's probes (`src/cluster/permissions.ts`): every
 * subscriber drops a message carrying it.
 */
export const PROBE_HEADER = "tm-permission-probe";

/** JSON payload of a message; an empty payload is `undefined` (what `publish(s)` sends). */
function decode(msg: Msg): unknown {
  return msg.data.length === 0 ? undefined : JSON.parse(msg.string());
}

function encode(data: unknown): string {
  return JSON.stringify(data) ?? "";
}

/**
 * Connect to NATS and return a {@linkcode Transport} over it; `nc` is the raw connection
 * (for JetStream and KV on the same connection). Disposing drains the connection.
 *
 * @example
 * ```ts
 * await using t = await natsTransport({ servers: "nats://127.0.0.1:4222", logger: log });
 * using _s = t.subscribe(subjects.eventsOf("*", "press-7"), (m) => console.log(m.data));
 * ```
 */
export async function natsTransport(
  opts: NatsTransportOptions,
): Promise<Transport & { nc: NatsConnection }> {
  const log = opts.logger;
  const servers = (typeof opts.servers === "string" ? opts.servers.split(",") : opts.servers)
    .map((s) => s.trim()).filter(Boolean);
  const nc = await connect({
    ...opts.security,
    servers,
    name: opts.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    reconnectJitter: 50,
    // nats.js otherwise builds an Error (a stack trace) for every request and timer: measured
    // here, it was most of a routed request's CPU cost
    noAsyncTraces: true,
  }).catch((err) => {
    throw new Error(
      `Cannot connect to NATS at ${servers.map(redact).join(",")}: ${err.message}`,
      { cause: err },
    );
  });
  log.info("nats connected", { server: nc.getServer() });
  let connected = true;
  const statusLoop = (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") connected = false;
      if (s.type === "reconnect") connected = true;
      logStatus(log, s);
    }
  })();

  /** W3C `traceparent` (and the request id) of a request made inside a trace. */
  const traceHeaders = (t: TraceContext) => {
    const h = headers();
    h.set("traceparent", traceparentOf(t));
    if (t.requestId) h.set("x-request-id", t.requestId);
    return h;
  };

  let closing: Promise<void> | undefined;
  const isClosed = () => closing !== undefined || nc.isClosed();

  function toTransportError(err: unknown, subject: string): unknown {
    if (err instanceof TimeoutError) {
      return new TransportError("timeout", `Request to "${subject}" timed out`);
    }
    if (
      err instanceof NoRespondersError ||
      (err instanceof RequestError && err.isNoResponders())
    ) {
      return new TransportError("no_responders", `No responders for "${subject}"`);
    }
    if (
      err instanceof ClosedConnectionError || err instanceof DrainingConnectionError || isClosed()
    ) {
      return new TransportError("closed", `Request to "${subject}": transport is closed`);
    }
    return err;
  }

  return {
    nc,
    publish(subject, data) {
      if (isClosed()) return;
      nc.publish(subject, encode(data));
    },
    subscribe(subject, cb): Subscription {
      if (isClosed()) return { unsubscribe() {}, [Symbol.dispose]() {} };
      const sub = nc.subscribe(subject, {
        callback: (err, msg) => {
          if (err) return log.warn("nats subscription failed", { subject, error: err });
          if (msg.headers?.has(PROBE_HEADER)) return;
          let data: unknown;
          try {
            data = decode(msg);
          } catch (error) {
            return log.warn("nats message is not JSON, dropped", { subject: msg.subject, error });
          }
          const m: Message = {
            subject: msg.subject,
            data,
            respond(reply) {
              if (!msg.reply || isClosed()) return;
              try {
                msg.respond(encode(reply));
              } catch (error) {
                log.debug("nats reply dropped", { subject: msg.subject, error });
              }
            },
          };
          // a request made inside a trace carries it: this node's log lines join that trace
          const tp = msg.headers?.get("traceparent");
          try {
            // a throw here would reach nats.js's parser and break the connection
            if (tp) {
              withTrace(
                continueTrace(tp, msg.headers?.get("x-request-id") || undefined),
                () => cb(m),
              );
            } else cb(m);
          } catch (error) {
            log.error("subscriber threw", { subject: msg.subject, error });
          }
        },
      });
      let done = false;
      const unsubscribe = () => {
        if (done) return;
        done = true;
        if (!nc.isClosed()) sub.unsubscribe();
      };
      return { unsubscribe, [Symbol.dispose]: unsubscribe };
    },
    async request(subject, data, ropts = {}) {
      if (isClosed()) throw new TransportError("closed", "Transport is closed");
      let msg: Msg;
      try {
        const trace = currentTrace();
        msg = await nc.request(subject, encode(data), {
          timeout: ropts.timeoutMs ?? 5000,
          ...(trace ? { headers: traceHeaders(trace) } : {}),
        });
      } catch (err) {
        throw toTransportError(err, subject);
      }
      try {
        return decode(msg);
      } catch (err) {
        throw new Error(`Reply to "${subject}" is not JSON`, { cause: err });
      }
    },
    async gather(subject, data, gopts) {
      const replies: unknown[] = [];
      if (isClosed()) return replies;
      try {
        const it = await nc.requestMany(subject, encode(data), {
          strategy: "timer",
          maxWait: gopts.maxWaitMs,
        });
        for await (const m of it) {
          let d: unknown;
          try {
            d = decode(m);
          } catch (error) {
            log.debug("nats reply is not JSON, dropped", { subject, error });
            continue;
          }
          replies.push(d);
          if (gopts.until?.(d)) break;
        }
      } catch (err) {
        // no responders, a closed connection: the replies so far are the answer
        log.debug("gather ended early", { subject, error: toTransportError(err, subject) });
      }
      return replies;
    },
    [Symbol.asyncDispose]() {
      closing ??= (async () => {
        if (!nc.isClosed()) {
          // draining waits for the server; while disconnected it would wait for a reconnect
          if (connected && !nc.isDraining()) {
            await drainWithin(nc, opts.drainTimeoutMs ?? 5000, log);
          }
          if (!nc.isClosed()) await nc.close();
        }
        await statusLoop;
        log.info("nats closed");
      })();
      return closing;
    },
  };
}

async function drainWithin(nc: NatsConnection, ms: number, log: Logger): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<"late">((r) => timer = setTimeout(() => r("late"), ms));
  const drained = nc.drain().then(() => "drained" as const, (error) => {
    log.warn("nats drain failed", { error });
    return "failed" as const;
  });
  const how = await Promise.race([drained, deadline]);
  clearTimeout(timer);
  if (how === "late") log.warn("nats drain timed out, closing", { timeoutMs: ms });
}

function logStatus(log: Logger, s: Status): void {
  switch (s.type) {
    case "disconnect":
      return log.warn("nats disconnected", { server: redact(s.server) });
    case "reconnect":
      return log.info("nats reconnected", { server: redact(s.server) });
    case "reconnecting":
      return log.debug("nats reconnecting");
    case "ldm":
      return log.warn("nats server entering lame duck mode", { server: redact(s.server) });
    case "error":
      return log.warn("nats error", { error: s.error });
    case "staleConnection":
      return log.warn("nats connection stale");
    case "slowConsumer":
      return log.warn("nats slow consumer", { subject: s.sub.getSubject(), pending: s.pending });
    case "update":
      return log.debug("nats cluster update", { added: s.added, deleted: s.deleted });
    default:
      return;
  }
}
