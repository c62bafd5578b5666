/**
 * The security of the node's NATS connection: its authentication (nats.js connect options from
 * {@linkcode NatsClientConfig}), its TLS (PEM read at start and again on SIGHUP: the next
 * connection or reconnection uses the new files; the one open stays as it is), and the
 * refusals waiting cannot cure — wrong credentials, a server certificate the node does not
 * trust, a client certificate the server does not accept — each as one
 * {@linkcode NatsRefusedError} naming the setting to check. No message here holds a secret.
 * @module
 */
import {
  AuthorizationError,
  type ConnectionOptions,
  credsAuthenticator,
  nkeyAuthenticator,
  type TlsOptions,
  UserAuthenticationExpiredError,
} from "@nats-io/transport-node";
import type { NatsAuth, NatsClientConfig } from "../config/nats_auth.ts";
import { readNatsTls } from "../config/nats_auth.ts";

/** NATS refused the node, or the node the server: fixing a setting is the only cure. */
export class NatsRefusedError extends Error {
  override name = "NatsRefusedError";
  /** Stable code of this condition. */
  readonly code = "nats_refused";
}

/** The connect options of the node's NATS connection and what reloads its TLS files. */
export interface NatsSecurity {
  /** Authentication and TLS options for nats.js `connect`. */
  options: Pick<ConnectionOptions, "user" | "pass" | "token" | "authenticator" | "tls">;
  /** Which settings hold the credentials (for errors). */
  authSettings: string;
  /** NATS_CERT is set (mutual TLS). */
  clientCert: boolean;
  /** NATS_CA is set. */
  privateCa: boolean;
  /**
   * Re-reads the TLS files (SIGHUP): the next (re)connect uses them. Throws, keeping the files
   * read before, when one cannot be read.
   */
  reload(): Promise<boolean>;
}

const SETTINGS: Record<NatsAuth["method"], string> = {
  none: "",
  creds: "NATS_CREDS",
  nkey: "NATS_NKEY",
  user: "NATS_USER and NATS_PASSWORD",
  token: "NATS_TOKEN",
};

/** Builds the connect options of `cfg`, reading its TLS files. */
export async function natsSecurity(cfg: NatsClientConfig | undefined): Promise<NatsSecurity> {
  const auth = cfg?.auth ?? { method: "none" };
  const enc = new TextEncoder();
  const options: NatsSecurity["options"] = {};
  if (auth.method === "user") Object.assign(options, { user: auth.user, pass: auth.password });
  if (auth.method === "token") options.token = auth.token;
  if (auth.method === "nkey") options.authenticator = nkeyAuthenticator(enc.encode(auth.seed));
  if (auth.method === "creds") options.authenticator = credsAuthenticator(enc.encode(auth.creds));
  const files = cfg?.tls;
  // nats.js keeps this object and reads it on every (re)connect: reload swaps its PEM fields.
  // TLS 1.2 at most: under TLS 1.3 the server refuses a client certificate after the client's
  // handshake is done, and Deno's node:tls then throws the alert where nats.js cannot catch it
  // (the process dies instead of saying why); under 1.2 it fails the handshake, a clean error.
  const tls: TlsOptions & { maxVersion?: string } | undefined = files
    ? { maxVersion: "TLSv1.2", ...await readNatsTls(files).catch(refuse) }
    : undefined;
  if (tls) options.tls = tls;
  return {
    options,
    authSettings: SETTINGS[auth.method],
    clientCert: files?.certFile !== undefined,
    privateCa: files?.caFile !== undefined,
    async reload() {
      if (!files || !tls) return false;
      const pem = await readNatsTls(files);
      tls.ca = pem.ca;
      tls.cert = pem.cert;
      tls.key = pem.key;
      return true;
    },
  };
}

function refuse(err: Error): never {
  throw new NatsRefusedError(err.message);
}

/** Codes of node:tls for a server certificate that does not verify. */
const SERVER_CERT =
  /^(UNABLE_TO_|SELF_SIGNED_CERT|DEPTH_ZERO_SELF_SIGNED|CERT_|ERR_TLS_CERT_ALTNAME)/;

/**
 * The permanent refusal `err` (a failed connect to NATS at `at`) is, as one line naming what to
 * check, or `undefined` for a failure worth waiting out (server down, not reachable yet).
 */
export function refusalOf(
  err: unknown,
  at: string,
  sec: Pick<NatsSecurity, "authSettings" | "clientCert" | "privateCa">,
): NatsRefusedError | undefined {
  const e = err as Error & { code?: string };
  const msg = e?.message ?? String(err);
  const code = typeof e?.code === "string" ? e.code : "";
  const say = (what: string) => new NatsRefusedError(`NATS at ${at} ${what}`, { cause: err });
  if (err instanceof UserAuthenticationExpiredError) {
    return say(`refused the node's credentials: they expired (${msg}): renew ${sec.authSettings}`);
  }
  if (err instanceof AuthorizationError || /authorization violation/i.test(msg)) {
    return say(
      sec.authSettings
        ? `refused the node's credentials (${msg}): check ${sec.authSettings}`
        : `requires authentication (${msg}): set NATS_CREDS, NATS_NKEY, NATS_USER and ` +
          "NATS_PASSWORD, or NATS_TOKEN",
    );
  }
  if (code.startsWith("ERR_SSL_") || /received fatal alert/i.test(msg)) {
    return say(
      sec.clientCert
        ? `refused the TLS handshake (${msg}): it does not accept the client certificate ` +
          "(check NATS_CERT and NATS_KEY)"
        : `refused the TLS handshake (${msg}): it requires a client certificate ` +
          "(set NATS_CERT and NATS_KEY)",
    );
  }
  if (SERVER_CERT.test(code) || /certificate/i.test(msg)) {
    return say(
      `has a TLS certificate this node does not trust (${msg}): ` +
        (sec.privateCa ? "check NATS_CA" : "set NATS_CA to the CA that signed it"),
    );
  }
  if (/does not support 'tls'|tls.*not available/i.test(msg)) {
    return say(`does not offer TLS (${msg}), but NATS_CA, NATS_CERT or a tls:// URL asks for it`);
  }
  return undefined;
}
