/**
 * The broker's sockets: the plain MQTT listener and, if configured, the MQTT-over-TLS one
 * (mTLS with a client CA). Each accepted socket is read whole (a Deno `node:net` quirk) and
 * guarded against oversized packets before aedes sees it.
 * @module
 */
import type { Aedes } from "aedes";
import { Buffer } from "node:buffer";
import { createServer, type Server } from "node:net";
import type { Duplex } from "node:stream";
import tls from "node:tls";
import type { Notices } from "./notices.ts";
import { guardPacketSize, type Oversize } from "./packet_guard.ts";
import { handshakeRefusal, peerAddress, type TlsListener, tlsServerOptions } from "./tls.ts";

/**
 * aedes reads a connection with one `read()` per `'readable'` event and expects it to return
 * the whole buffer. Deno's `node:net` can push more bytes during that `read()`; they stay
 * buffered and no further `'readable'` comes, so the connection stalls until the peer gives
 * up (seen with a 64 KiB PUBLISH about once in 30). Reading until the buffer is empty fixes it.
 */
export function readWholeBuffer<S extends Duplex>(sock: S): S {
  const read = sock.read.bind(sock);
  sock.read = (n?: number) => {
    if (n !== undefined && n !== null) return read(n);
    const first = read();
    if (first === null) return null;
    const more: Buffer[] = [];
    for (let b = read(); b !== null; b = read()) more.push(b);
    return more.length === 0 ? first : Buffer.concat([first, ...more]);
  };
  return sock;
}

/** Where to listen. */
export interface ListenOptions {
  host: string;
  port: number;
  tls?: TlsListener;
}

/** The open listeners. */
export interface Listeners {
  port: number;
  tlsPort?: number;
  /** Re-read the TLS certificate, key and CA; new connections use them. */
  reloadTls(): Promise<void>;
  /** Stop listening (now); resolves once both listeners are closed. */
  close(): Promise<void>;
}

/** Open the listeners and hand every accepted socket to aedes. */
export async function listen(o: ListenOptions, aedes: Aedes, notices: Notices): Promise<Listeners> {
  const { log, metrics: m } = notices;
  /** A connection cut for a packet announced over its size limit (before buffering it). */
  const oversize = (sock: Duplex) => (why: Oversize) => {
    const from = `${peerAddress(sock)}`;
    if (why === "packet_too_large") m.messagesRejected.inc({ reason: "too_large" });
    else notices.authFailed({ id: `net:${from}` }, undefined, why);
    if (notices.oncePerMinute(`oversize\u0000${from}`)) {
      log.warn("MQTT packet over its size limit; connection closed", { from, reason: why });
    }
  };
  const accept = (sock: Duplex) =>
    aedes.handle(guardPacketSize(readWholeBuffer(sock), oversize(sock)));
  const server: Server = createServer(accept);
  await new Promise<void>((resolve, rejectP) => {
    server.once("error", rejectP);
    server.listen(o.port, o.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : o.port;

  let tlsServer: tls.Server | undefined;
  let tlsPort: number | undefined;
  if (o.tls) {
    const t = o.tls;
    tlsServer = tls.createServer(await tlsServerOptions(t), accept);
    const srv = tlsServer;
    // a refused handshake (no certificate, one the CA did not issue, a client that does not
    // trust ours) never reaches CONNECT: count, audit and log it here
    srv.on("tlsClientError", (err: Error & { code?: string }, sock: tls.TLSSocket) => {
      const from = { id: `tls:${peerAddress(sock)}` };
      notices.authFailed(from, undefined, handshakeRefusal(err), err.message);
    });
    await new Promise<void>((resolve, rejectP) => {
      srv.once("error", rejectP);
      srv.listen(t.port, t.host, () => resolve());
    });
    const a = srv.address();
    tlsPort = typeof a === "object" && a ? a.port : t.port;
  }

  return {
    port,
    tlsPort,
    async reloadTls() {
      if (!tlsServer || !o.tls) return;
      tlsServer.setSecureContext(await tlsServerOptions(o.tls));
      log.info("TLS certificate reloaded", { certFile: o.tls.certFile });
    },
    async close() {
      const tlsClosed = tlsServer
        ? new Promise<void>((r) => tlsServer!.close(() => r()))
        : Promise.resolve();
      const closed = new Promise<void>((r) => server.close(() => r()));
      await closed;
      await tlsClosed;
    },
  };
}
