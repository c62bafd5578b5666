/**
 * Header and idle timeouts, and a bound on open connections, for the HTTP gateway.
 *
 * `Deno.serve` (Deno 2.9) never closes a connection on its own: one that sends half a request
 * head, or nothing, or sits idle between requests stays open until the peer leaves. The guard
 * sees every request as it starts and finishes ({@linkcode ConnectionGuard.wrap}) and, on a
 * tick, the connections the kernel lists for the port ({@linkcode tcpConnections}); it ends
 * (`shutdown(2)`, {@linkcode SocketCloser}) each connection that
 *
 * - has not completed a request head `headerTimeoutMs` after it was first seen,
 * - has had no request in progress for `idleTimeoutMs`, or
 * - is one too many: past `maxConnections`, those that never completed a request go first,
 *   oldest first.
 *
 * A request in progress (its response still being sent) holds its connection whatever the
 * time; a connection upgraded to a WebSocket is left to the WebSocket (Deno pings it). A
 * timeout is enforced up to one tick late (a quarter of the shorter timeout, at most 1 s).
 * @module
 */
import type { Logger } from "../obs/log.ts";
import { peerKey, type SocketCloser, type TcpConnection, tcpConnections } from "./tcp_sockets.ts";

/** The gateway's connection limits. */
export interface HttpLimits {
  /** Time a new connection has to complete its first request head (ms). */
  headerTimeoutMs: number;
  /** Time a connection may stay open without a request in progress (ms). */
  idleTimeoutMs: number;
  /** Open connections at most. */
  maxConnections: number;
}

/** Defaults: 10 s to send a request head, 60 s idle, 5,000 connections. */
export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  headerTimeoutMs: 10_000,
  idleTimeoutMs: 60_000,
  maxConnections: 5_000,
};

/** Why the guard ended a connection (a metric label). */
export type CloseReason = "header_timeout" | "idle_timeout" | "too_many_connections";

/** A request handler as `Deno.serve` calls it. */
export type ServeHandler = (
  req: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
) => Response | Promise<Response>;

/** Options of {@linkcode ConnectionGuard}. */
export interface ConnectionGuardOptions {
  limits: HttpLimits;
  closer: SocketCloser;
  logger: Logger;
  /** The connections of a local port (default: the kernel's tables). */
  connections?: (port: number) => Promise<TcpConnection[]>;
  now?: () => number;
  /** Called after each tick that ended connections, with how many by reason. */
  onClosed?(reason: CloseReason, n: number): void;
}

/** What the guard knows of the requests of one peer address (one connection). */
interface Activity {
  inflight: number;
  /** When the last request finished (its response sent). */
  last: number;
  upgraded: boolean;
  created: number;
}

/** Time between warnings about ended connections. */
const WARN_EVERY_MS = 10_000;

/** See the module documentation. */
export class ConnectionGuard {
  readonly #o: Required<Omit<ConnectionGuardOptions, "onClosed">> & ConnectionGuardOptions;
  readonly #activity = new Map<string, Activity>();
  /** First time each connection (socket inode) was seen. */
  readonly #seen = new Map<string, number>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running = false;
  #open = 0;
  #warned = 0;
  #unwarned: Record<CloseReason, number> = {
    header_timeout: 0,
    idle_timeout: 0,
    too_many_connections: 0,
  };

  constructor(o: ConnectionGuardOptions) {
    this.#o = { connections: tcpConnections, now: Date.now, ...o };
  }

  /** Open connections at the last tick. */
  get open(): number {
    return this.#open;
  }

  /** Time between two ticks (ms). */
  get tickMs(): number {
    const l = this.#o.limits;
    return Math.max(50, Math.min(1000, Math.min(l.headerTimeoutMs, l.idleTimeoutMs) / 4));
  }

  /** `handler`, recording when each connection's requests start and finish. */
  wrap(handler: ServeHandler): ServeHandler {
    const now = this.#o.now;
    return (req, info) => {
      const a = info.remoteAddr;
      const key = peerKey(a.hostname, a.port);
      let act = this.#activity.get(key);
      if (!act) {
        act = { inflight: 0, last: 0, upgraded: false, created: now() };
        this.#activity.set(key, act);
      }
      const rec = act;
      rec.inflight++;
      const end = () => {
        rec.inflight--;
        rec.last = now();
      };
      info.completed.then(end, end);
      const res = handler(req, info);
      if (res instanceof Promise) {
        return res.then((r) => {
          if (r.status === 101) rec.upgraded = true;
          return r;
        });
      }
      if (res.status === 101) rec.upgraded = true;
      return res;
    };
  }

  /** Ticks until {@linkcode stop}, over the connections of local port `port`. */
  start(port: number): void {
    if (this.#running) return;
    this.#running = true;
    const tick = async () => {
      try {
        await this.sweep(port);
      } catch (err) {
        this.#o.logger.warn("HTTP connection guard tick failed", { err });
      }
      if (this.#running) this.#schedule(tick);
    };
    this.#schedule(tick);
  }

  #schedule(tick: () => void): void {
    const t = setTimeout(tick, this.tickMs);
    Deno.unrefTimer(t);
    this.#timer = t;
  }

  /** Stops ticking. */
  stop(): void {
    this.#running = false;
    clearTimeout(this.#timer);
  }

  /** One tick: ends the connections of `port` past a limit; how many, by reason. */
  async sweep(port: number): Promise<Record<CloseReason, number>> {
    const { limits, now } = this.#o;
    const t0 = now();
    const live = await this.#o.connections(port);
    const close = new Map<string, CloseReason>();
    const peers = new Set<string>();
    const inodes = new Set<string>();
    const fresh: Array<{ inode: string; first: number }> = [];
    for (const c of live) {
      peers.add(c.peer);
      inodes.add(c.inode);
      let first = this.#seen.get(c.inode);
      if (first === undefined) this.#seen.set(c.inode, first = t0);
      const act = this.#activity.get(c.peer);
      if (!act) {
        if (t0 - first >= limits.headerTimeoutMs) close.set(c.inode, "header_timeout");
        else fresh.push({ inode: c.inode, first });
      } else if (!act.upgraded && act.inflight === 0 && t0 - act.last >= limits.idleTimeoutMs) {
        close.set(c.inode, "idle_timeout");
      }
    }
    for (const inode of this.#seen.keys()) if (!inodes.has(inode)) this.#seen.delete(inode);
    for (const [peer, act] of this.#activity) {
      // a request may have come in on a new connection since the table was read
      if (!peers.has(peer) && act.inflight === 0 && act.created < t0) this.#activity.delete(peer);
    }
    let over = live.length - close.size - limits.maxConnections;
    fresh.sort((a, b) => a.first - b.first);
    for (const f of fresh) {
      if (over-- <= 0) break;
      close.set(f.inode, "too_many_connections");
    }
    this.#open = live.length - close.size;
    const counts: Record<CloseReason, number> = {
      header_timeout: 0,
      idle_timeout: 0,
      too_many_connections: 0,
    };
    if (close.size === 0) return counts;
    await this.#o.closer.shutdown(close.keys());
    for (const reason of close.values()) counts[reason]++;
    this.#report(counts);
    return counts;
  }

  #report(counts: Record<CloseReason, number>): void {
    for (const [reason, n] of Object.entries(counts) as [CloseReason, number][]) {
      if (n === 0) continue;
      this.#o.onClosed?.(reason, n);
      this.#unwarned[reason] += n;
    }
    const u = this.#unwarned;
    const t = this.#o.now();
    // idle connections are closed as a matter of course; the others are worth a line
    if (u.header_timeout + u.too_many_connections === 0 || t - this.#warned < WARN_EVERY_MS) {
      return;
    }
    this.#o.logger.warn("HTTP connections closed: request head too slow or too many open", {
      headerTimeout: u.header_timeout,
      tooMany: u.too_many_connections,
      idle: u.idle_timeout,
      limits: this.#o.limits,
    });
    this.#warned = t;
    this.#unwarned = { header_timeout: 0, idle_timeout: 0, too_many_connections: 0 };
  }
}
