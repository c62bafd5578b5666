/**
 * The gateway's HTTP server: `Deno.serve` with the {@linkcode ConnectionGuard} (header and
 * idle timeouts, a bound on open connections), TLS with certificate reload, and a restart
 * when the server stops accepting on its own (Deno ends its accept loop on an error such as
 * "too many open files"; the node would otherwise stay up without HTTP).
 * @module
 */
import type { Logger } from "../obs/log.ts";
import {
  type CloseReason,
  ConnectionGuard,
  type HttpLimits,
  type ServeHandler,
} from "./conn_guard.ts";
import { openSocketCloser } from "./tcp_sockets.ts";

/** Options of {@linkcode serveGateway}. */
export interface GatewayServerOptions {
  hostname: string;
  /** 0 = pick a free port. */
  port: number;
  /** HTTPS with this certificate and key (PEM files, read again on reload). */
  tls?: { certFile: string; keyFile: string };
  limits: HttpLimits;
  logger: Logger;
  /** Connections the guard ended, by reason (metrics). */
  onClosed?(reason: CloseReason, n: number): void;
}

/** A running gateway server. */
export interface GatewayServer extends AsyncDisposable {
  /** The bound port. */
  readonly port: number;
  /** False where the timeouts cannot be enforced (not Linux, or no FFI permission). */
  readonly guarded: boolean;
  /** Open connections at the guard's last tick. */
  readonly connections: number;
  /**
   * TLS: read the certificate again and serve new connections with it (a second server on
   * the same port, SO_REUSEPORT); the old one stops accepting and drains.
   */
  reload(): Promise<void>;
  /** Stop accepting, finish requests in progress, close. */
  shutdown(): Promise<void>;
}

/** Start the gateway's server; `handler` answers every request. */
export async function serveGateway(
  o: GatewayServerOptions,
  handler: ServeHandler,
): Promise<GatewayServer> {
  const log = o.logger;
  const closer = openSocketCloser();
  const guard = closer
    ? new ConnectionGuard({ limits: o.limits, closer, logger: log, onClosed: o.onClosed })
    : undefined;
  if (!guard) {
    log.warn(
      "HTTP header and idle timeouts and the connection bound are not enforced: they need " +
        "Linux and FFI permission (--allow-ffi, included in --allow-all)",
    );
  }
  const serveHandler = guard ? guard.wrap(handler) : handler;
  let stopping = false;
  let current: Deno.HttpServer<Deno.NetAddr>;

  const listen = async (port: number) => {
    const s = Deno.serve({
      hostname: o.hostname,
      port,
      onListen: () => {},
      ...(o.tls
        ? {
          cert: await Deno.readTextFile(o.tls.certFile),
          key: await Deno.readTextFile(o.tls.keyFile),
          reusePort: true,
        }
        : {}),
    }, serveHandler);
    s.finished.catch((err) => {
      if (stopping || s !== current) return;
      log.error("HTTP server stopped accepting connections; starting it again", { err });
      void restart(s.addr.port);
    });
    return s;
  };

  /** Serve again on `port` until it works (the failed listener may take a moment to go). */
  const restart = async (port: number) => {
    for (let wait = 250; !stopping; wait = Math.min(wait * 2, 5_000)) {
      await new Promise((r) => setTimeout(r, wait));
      if (stopping) return;
      try {
        current = await listen(port);
        log.info("HTTP server accepting connections again", { port });
        return;
      } catch (err) {
        log.warn("cannot start the HTTP server again yet", { port, err });
      }
    }
  };

  current = await listen(o.port);
  const port = current.addr.port;
  guard?.start(port);
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    guard?.stop();
    await current.shutdown();
  };
  return {
    port,
    guarded: guard !== undefined,
    get connections() {
      return guard?.open ?? 0;
    },
    async reload() {
      if (!o.tls || stopping) return;
      const old = current;
      current = await listen(port);
      // the old one drains in the background
      old.shutdown().catch((err) => log.warn("old HTTPS server did not shut down", { err }));
    },
    shutdown,
    [Symbol.asyncDispose]: shutdown,
  };
}
