/**
 * Start-up that waits (cluster mode): a node started before its NATS server, or while a
 * JetStream cluster still elects its meta leader, keeps trying with capped backoff instead of
 * exiting. It logs one line when it starts waiting, when the reason changes, and every 30 s;
 * `TWINMILL_STARTUP_TIMEOUT` bounds the wait.
 * @module
 */
import type { Logger } from "../obs/log.ts";
import { type Clock, systemClock } from "../runtime/clock.ts";
import { natsTransport, redact } from "../transport/nats.ts";
import type { Transport } from "../transport/port.ts";
import type { NatsConnection } from "@nats-io/transport-node";
import { ensureInboundStream } from "./inbound.ts";
import { NatsRefusedError, type NatsSecurity, refusalOf } from "./nats_connect.ts";
import { NatsPermissionError, permissionErrorOf, violation } from "./permissions.ts";

/** What a starting node waits for (the body of its 503 from `/readyz`). */
export interface Waiting {
  /** `NATS/JetStream` */
  what: string;
  /** Where, without credentials: `nats://127.0.0.1:4222`. */
  at: string;
  /** Why the last attempt failed. */
  reason: string;
  /** Attempts so far. */
  attempts: number;
  /** When the wait began (ISO 8601). */
  since: string;
}

/** The wait ended at its limit (`TWINMILL_STARTUP_TIMEOUT`). */
export class StartupTimeoutError extends Error {
  override name = "StartupTimeoutError";
  /** Stable code of this condition. */
  readonly code = "startup_timeout";
}

/** Options of {@linkcode waitUntilUp}. */
export interface WaitUntilUpOptions<T> {
  /** What is awaited, for log lines and errors: `NATS/JetStream`. */
  what: string;
  /** Where, without credentials. */
  at: string;
  /** One try; a throw means "not yet" (its message is the reason). */
  attempt(): Promise<T>;
  /** Give up after this long (ms); 0 = never. */
  timeoutMs: number;
  logger: Logger;
  clock?: Clock;
  /** Called after every failed attempt (readiness shows it). */
  onWaiting?(w: Waiting): void;
  /** A failure waiting cannot cure (wrong credentials): thrown at once, as it is. */
  isPermanent?(err: unknown): boolean;
  /** First pause between attempts (default 250 ms); it doubles up to `maxDelayMs`. */
  firstDelayMs?: number;
  /** Longest pause between attempts (default 5 s). */
  maxDelayMs?: number;
  /** A reason that stays the same is logged again after this long (default 30 s). */
  logEveryMs?: number;
}

/** An error's message without user info in any URL it names. */
export function reasonOf(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return (msg || (err instanceof Error ? err.name : "unknown error"))
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^@/\s,]*@/gi, "$1");
}

/**
 * Calls `attempt` until it resolves, pausing 250 ms, 500 ms, … up to 5 s between tries.
 * Throws {@linkcode StartupTimeoutError} when `timeoutMs` passes first (an attempt still
 * running then is not awaited).
 *
 * @example
 * ```ts
 * const t = await waitUntilUp({ what: "NATS/JetStream", at: url, attempt: connect,
 *   timeoutMs: 300_000, logger: log });
 * ```
 */
export async function waitUntilUp<T>(o: WaitUntilUpOptions<T>): Promise<T> {
  const clock = o.clock ?? systemClock;
  const first = o.firstDelayMs ?? 250;
  const max = o.maxDelayMs ?? 5_000;
  const logEvery = o.logEveryMs ?? 30_000;
  const start = clock.now();
  const deadline = o.timeoutMs > 0 ? start + o.timeoutMs : Infinity;
  let delay = first;
  let attempts = 0;
  let logged: { reason: string; at: number } | undefined;
  let reason = "";
  // resolves false once the deadline passes (never when there is none)
  let timer: unknown;
  const late = deadline === Infinity ? undefined : new Promise<false>((resolve) => {
    timer = clock.setTimeout(() => resolve(false), deadline - start);
  });
  const giveUp = () =>
    new StartupTimeoutError(
      `gave up waiting for ${o.what} at ${o.at} after ${Math.round(o.timeoutMs / 1000)} s ` +
        `(TWINMILL_STARTUP_TIMEOUT): ${reason || "no answer"}`,
    );
  try {
    while (true) {
      attempts++;
      const tried = o.attempt().then((value) => ({ value }), (err) => ({ err }));
      const r = late ? await Promise.race([tried, late]) : await tried;
      if (r === false) throw giveUp();
      if ("err" in r && o.isPermanent?.(r.err)) throw r.err;
      if ("value" in r) {
        if (logged) {
          o.logger.info(`${o.what} is up`, {
            at: o.at,
            attempts,
            waitedMs: clock.now() - start,
          });
        }
        return r.value;
      }
      reason = reasonOf(r.err);
      const now = clock.now();
      o.onWaiting?.({
        what: o.what,
        at: o.at,
        reason,
        attempts,
        since: new Date(start).toISOString(),
      });
      if (!logged || logged.reason !== reason || now - logged.at >= logEvery) {
        o.logger.warn(`waiting for ${o.what} at ${o.at}: ${reason}`, {
          at: o.at,
          reason,
          attempts,
          waitedMs: now - start,
          timeoutMs: o.timeoutMs,
        });
        logged = { reason, at: now };
      }
      const pause = new Promise<true>((resolve) => clock.setTimeout(() => resolve(true), delay));
      if (late && (await Promise.race([pause, late])) === false) throw giveUp();
      if (!late) await pause;
      delay = Math.min(max, delay * 2);
    }
  } finally {
    if (timer !== undefined) clock.clear(timer);
  }
}

/** Options of {@linkcode connectWhenUp}. */
export interface ConnectWhenUpOptions {
  /** `NATS_URL`: comma-separated server URLs. */
  servers: string;
  /** Connection name (the node id). */
  name: string;
  /** Replicas of the inbound stream, created by the first node. */
  replicas: number;
  /** Authentication and TLS of the connection (none: a plain, anonymous connection). */
  security?: NatsSecurity;
  /** 0 = wait forever. */
  timeoutMs: number;
  logger: Logger;
  onWaiting?(w: Waiting): void;
  clock?: Clock;
}

/**
 * The node's NATS transport once NATS answers and JetStream works (its API answers and the
 * inbound stream exists or could be created: the JetStream cluster has a meta leader). Waits
 * with {@linkcode waitUntilUp}; the connection, once made, is kept between attempts. A refusal
 * (wrong credentials, untrusted server certificate, client certificate refused) ends the wait at
 * once with a {@linkcode NatsRefusedError}.
 */
export async function connectWhenUp(
  o: ConnectWhenUpOptions,
): Promise<Transport & { nc: NatsConnection }> {
  const at = o.servers.split(",").map((s) => redact(s.trim())).filter(Boolean).join(",");
  let transport: (Transport & { nc: NatsConnection }) | undefined;
  let gaveUp = false;
  try {
    return await waitUntilUp({
      what: "NATS/JetStream",
      at,
      timeoutMs: o.timeoutMs,
      logger: o.logger,
      clock: o.clock,
      onWaiting: o.onWaiting,
      isPermanent: (err) => err instanceof NatsRefusedError || err instanceof NatsPermissionError,
      async attempt() {
        if (!transport) {
          const t = await natsTransport({
            servers: o.servers,
            name: o.name,
            logger: o.logger.child("nats"),
            security: o.security?.options,
          }).catch((err) => {
            const sec = o.security ?? { authSettings: "", clientCert: false, privateCa: false };
            throw refusalOf(err.cause ?? err, at, sec) ??
              new Error(`cannot connect: ${reasonOf(err.cause ?? err)}`);
          });
          if (gaveUp) {
            await t[Symbol.asyncDispose]();
            throw new Error("gave up");
          }
          transport = t;
        }
        await ensureInboundStream(transport.nc, o.replicas).catch((err) => {
          // a permission the user lacks will not come by waiting: say which, at once
          const refused = violation(err);
          if (refused) throw permissionErrorOf(refused);
          throw new Error(`JetStream not available: ${reasonOf(err)}`);
        });
        return transport;
      },
    });
  } catch (err) {
    gaveUp = true;
    await transport?.[Symbol.asyncDispose]();
    throw err;
  }
}
