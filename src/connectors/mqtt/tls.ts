/**
 * The embedded broker's MQTT-over-TLS side: the listener's options (mutual TLS when a client
 * CA is configured), the twin a client certificate names, and why a handshake was refused.
 *
 * With a client CA the listener is mTLS whatever device authentication says
 * (`TWINMILL_MQTT_AUTH`): the handshake fails without a certificate that CA issued, the
 * certificate names the one twin the connection acts for, and a revoked one is refused.
 * @module
 */
import { isValidTwinId } from "../../../actors/validate.ts";

/** The MQTT-over-TLS listener (8883). */
export interface TlsListener {
  host: string;
  port: number;
  /** PEM files, re-read by `Broker.reloadTls()`. */
  certFile: string;
  keyFile: string;
  /**
   * The CA of device certificates. With it every connection must present a certificate this
   * CA issued (the handshake fails otherwise); the certificate names the twin the connection
   * may act for (its topics only), and a revoked one is refused at CONNECT.
   */
  clientCa?: ClientCa;
}

/** Device certificates: their CA and their revocation list. */
export interface ClientCa {
  /** PEM file of the CA, re-read by `Broker.reloadTls()`. */
  file: string;
  /** True when the certificate with this serial (normalised hex) is revoked. */
  isRevoked(serial: string): Promise<boolean>;
}

/** What `node:tls` tells of a peer certificate (the fields read here). */
export interface PeerCertificate {
  subject?: { CN?: string | string[] };
  subjectaltname?: string;
  serialNumber?: string;
}

/** Options of `tls.createServer` for the listener: mTLS (required certificate) with a CA. */
export async function tlsServerOptions(t: TlsListener): Promise<{
  cert: string;
  key: string;
  ca?: string;
  requestCert?: boolean;
  rejectUnauthorized?: boolean;
}> {
  return {
    cert: await Deno.readTextFile(t.certFile),
    key: await Deno.readTextFile(t.keyFile),
    ...(t.clientCa
      ? {
        ca: await Deno.readTextFile(t.clientCa.file),
        requestCert: true,
        rejectUnauthorized: true,
      }
      : {}),
  };
}

/** The twin a client certificate names: a SAN URI `urn:twinmill:twin:{id}`, else its CN. */
export function certificateTwin(cert: PeerCertificate): string | undefined {
  for (const part of (cert.subjectaltname ?? "").split(",")) {
    const m = /^\s*URI:urn:twinmill:twin:(.+)$/.exec(part);
    if (m && isValidTwinId(m[1])) return m[1];
  }
  const cn = Array.isArray(cert.subject?.CN) ? cert.subject.CN[0] : cert.subject?.CN;
  return cn && isValidTwinId(cn) ? cn : undefined;
}

/**
 * The verified client certificate of an MQTT connection's socket, if it came over TLS with
 * one; `undefined` for a plain socket or a TLS socket without a verified certificate.
 */
export function verifiedPeerCertificate(conn: unknown): PeerCertificate | undefined {
  const c = conn as {
    encrypted?: boolean;
    authorized?: boolean;
    getPeerCertificate?: () => PeerCertificate;
  } | undefined;
  if (!c?.encrypted || !c.authorized) return undefined;
  const cert = c.getPeerCertificate?.();
  return cert?.serialNumber ? cert : undefined;
}

/** True when an MQTT connection's socket is TLS. */
export function isTlsConnection(conn: unknown): boolean {
  return (conn as { encrypted?: boolean } | undefined)?.encrypted === true;
}

/** The peer address of a TLS socket, also when the handshake failed (Deno keeps it on the parent). */
export function peerAddress(sock: unknown): string {
  const s = sock as { remoteAddress?: string; _parent?: { remoteAddress?: string } } | undefined;
  return s?.remoteAddress ?? s?._parent?.remoteAddress ?? "unknown";
}

/**
 * The reason a failed TLS handshake is counted under (`twinmill_mqtt_auth_failures_total`):
 * `missing_client_certificate`, else `tls_handshake_failed` (a certificate the CA did not
 * issue, a client that does not trust the node's certificate, or not TLS at all).
 */
export function handshakeRefusal(err: { code?: string }): string {
  return err.code === "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE"
    ? "missing_client_certificate"
    : "tls_handshake_failed";
}
