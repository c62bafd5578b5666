/**
 * How a cluster node authenticates to NATS and verifies it: one method of `NATS_CREDS` (a
 * credentials file: user JWT and nkey seed), `NATS_NKEY` (an nkey seed), `NATS_USER` with
 * `NATS_PASSWORD`, or `NATS_TOKEN`; the secrets also from files (`NATS_NKEY_FILE`,
 * `NATS_PASSWORD_FILE`, `NATS_TOKEN_FILE`: Docker secrets), read once here, at start, a trailing
 * newline trimmed. TLS: `NATS_CA` (PEM, the CA that signed the servers' certificates),
 * `NATS_CERT` and `NATS_KEY` (PEM, the node's client certificate for mutual TLS), read when the
 * node connects and again on SIGHUP ({@linkcode readNatsTls}).
 *
 * The insecure combination is refused: a non-loopback `NATS_URL` with no authentication at all
 * needs `TWINMILL_NATS_INSECURE=1`.
 * @module
 */
import { ConfigError } from "./config_error.ts";

/** How the node proves who it is to NATS (secrets as read at start). */
export type NatsAuth =
  | { method: "none" }
  | { method: "creds"; file: string; creds: string }
  | { method: "nkey"; seed: string }
  | { method: "user"; user: string; password: string }
  | { method: "token"; token: string };

/** The TLS files of the NATS connection (paths). */
export interface NatsTlsFiles {
  /** PEM: the CA the servers' certificates must chain to (else the system's roots). */
  caFile?: string;
  /** PEM: the node's client certificate (mutual TLS), with `keyFile`. */
  certFile?: string;
  /** PEM: the private key of `certFile`. */
  keyFile?: string;
}

/** The NATS client settings of a cluster node. */
export interface NatsClientConfig {
  auth: NatsAuth;
  /** Set when `NATS_CA` or `NATS_CERT`/`NATS_KEY` is set, or a URL is `tls://`. */
  tls?: NatsTlsFiles;
  /** `TWINMILL_NATS_INSECURE=1`: a non-loopback NATS without authentication was allowed. */
  insecure: boolean;
}

/** The environment variables read here (a type, so any env record is one). */
export type NatsEnv = {
  NATS_URL?: string;
  NATS_CREDS?: string;
  NATS_NKEY?: string;
  NATS_NKEY_FILE?: string;
  NATS_USER?: string;
  NATS_PASSWORD?: string;
  NATS_PASSWORD_FILE?: string;
  NATS_TOKEN?: string;
  NATS_TOKEN_FILE?: string;
  NATS_CA?: string;
  NATS_CERT?: string;
  NATS_KEY?: string;
  TWINMILL_NATS_INSECURE?: "0" | "1";
};

/** Reads a whole text file (injected by tests). */
export type ReadText = (path: string) => string;

/**
 * The value of `name` or the content of the file `${name}_FILE` names (one trailing newline
 * trimmed); both set is an error, so is a file that cannot be read or is empty. The error names
 * the variable and the file, never the content.
 */
export function secretOf(
  env: { readonly [name: string]: unknown },
  name: string,
  read: ReadText = Deno.readTextFileSync,
): string | undefined {
  const str = (v: unknown) => typeof v === "string" ? v : undefined;
  const value = str(env[name]);
  const file = str(env[`${name}_FILE`]);
  if (value !== undefined && file !== undefined) {
    throw new ConfigError(name, `set ${name} or ${name}_FILE, not both`);
  }
  if (file === undefined) return value;
  let text: string;
  try {
    text = read(file);
  } catch {
    throw new ConfigError(`${name}_FILE`, `cannot read file "${file}"`);
  }
  text = text.replace(/\r?\n$/, "");
  if (text === "") throw new ConfigError(`${name}_FILE`, `file "${file}" is empty`);
  return text;
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[?::1\]?)$/i;

/** The host of one `NATS_URL` entry (`nats://u:p@host:4222`, `tls://host`, `host:4222`). */
export function natsHost(server: string): string {
  const s = server.trim();
  const withScheme = /^[a-z]+:\/\//i.test(s) ? s : `nats://${s}`;
  try {
    return new URL(withScheme).hostname;
  } catch {
    return s;
  }
}

/** Credentials given in a URL (`nats://user:pass@host`, `nats://token@host`). */
function urlHasUserInfo(server: string): boolean {
  return /^([a-z]+:\/\/)?[^@/\s]+@/i.test(server.trim());
}

/** The NATS client settings from the environment; throws {@linkcode ConfigError}. */
export function natsClientConfig(
  e: NatsEnv,
  read: ReadText = Deno.readTextFileSync,
): NatsClientConfig {
  const seed = secretOf(e, "NATS_NKEY", read);
  const password = secretOf(e, "NATS_PASSWORD", read);
  const token = secretOf(e, "NATS_TOKEN", read);
  const given = [
    e.NATS_CREDS !== undefined && "NATS_CREDS",
    seed !== undefined && "NATS_NKEY",
    (e.NATS_USER !== undefined || password !== undefined) && "NATS_USER",
    token !== undefined && "NATS_TOKEN",
  ].filter((x): x is string => x !== false);
  if (given.length > 1) {
    throw new ConfigError(given[1], `set one NATS authentication method, got ${given.join(", ")}`);
  }
  if ((e.NATS_USER === undefined) !== (password === undefined)) {
    throw new ConfigError(
      e.NATS_USER === undefined ? "NATS_USER" : "NATS_PASSWORD",
      "NATS_USER and NATS_PASSWORD (or NATS_PASSWORD_FILE) go together",
    );
  }
  const auth = authOf(e, seed, password, token, read);
  if ((e.NATS_CERT === undefined) !== (e.NATS_KEY === undefined)) {
    throw new ConfigError(
      e.NATS_CERT === undefined ? "NATS_CERT" : "NATS_KEY",
      "NATS_CERT and NATS_KEY go together",
    );
  }
  for (const name of ["NATS_CA", "NATS_CERT", "NATS_KEY"] as const) {
    const file = e[name];
    if (file === undefined) continue;
    try {
      read(file);
    } catch {
      throw new ConfigError(name, `cannot read file "${file}"`);
    }
  }
  const servers = (e.NATS_URL ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  const tlsUrl = servers.some((s) => /^tls:\/\//i.test(s));
  const tls = e.NATS_CA || e.NATS_CERT || tlsUrl
    ? { caFile: e.NATS_CA, certFile: e.NATS_CERT, keyFile: e.NATS_KEY }
    : undefined;
  // a client certificate authenticates too (nats-server `verify_and_map`)
  const authenticated = auth.method !== "none" || e.NATS_CERT !== undefined ||
    servers.some(urlHasUserInfo);
  const remote = servers.map(natsHost).filter((h) => !LOOPBACK.test(h));
  const insecure = e.TWINMILL_NATS_INSECURE === "1";
  if (remote.length > 0 && !authenticated && !insecure) {
    throw new ConfigError(
      "NATS_URL",
      `NATS at ${remote.join(",")} is not on this host and no NATS authentication is set ` +
        "(NATS_CREDS, NATS_NKEY, NATS_USER and NATS_PASSWORD, NATS_TOKEN or NATS_CERT): set one, " +
        "or TWINMILL_NATS_INSECURE=1 to connect without",
    );
  }
  return {
    auth,
    ...(tls ? { tls } : {}),
    insecure: insecure && remote.length > 0 && !authenticated,
  };
}

function authOf(
  e: NatsEnv,
  seed: string | undefined,
  password: string | undefined,
  token: string | undefined,
  read: ReadText,
): NatsAuth {
  if (e.NATS_CREDS !== undefined) {
    let creds: string;
    try {
      creds = read(e.NATS_CREDS);
    } catch {
      throw new ConfigError("NATS_CREDS", `cannot read file "${e.NATS_CREDS}"`);
    }
    if (
      !/-----BEGIN NATS USER JWT-----/.test(creds) || !/-----BEGIN USER NKEY SEED-----/.test(creds)
    ) {
      throw new ConfigError(
        "NATS_CREDS",
        `file "${e.NATS_CREDS}" is not a NATS credentials file (a user JWT and an nkey seed)`,
      );
    }
    return { method: "creds", file: e.NATS_CREDS, creds };
  }
  if (seed !== undefined) {
    if (!/^SU[A-Z2-7]{56}$/.test(seed)) {
      throw new ConfigError(
        "NATS_NKEY",
        "must be a user nkey seed (58 characters starting with SU)",
      );
    }
    return { method: "nkey", seed };
  }
  if (e.NATS_USER !== undefined && password !== undefined) {
    return { method: "user", user: e.NATS_USER, password };
  }
  if (token !== undefined) return { method: "token", token };
  return { method: "none" };
}

/** PEM contents of the NATS TLS files, as the NATS client takes them. */
export interface NatsTlsPem {
  ca?: string;
  cert?: string;
  key?: string;
}

/**
 * Reads the TLS files (start-up, and SIGHUP for the next connection). Throws an `Error` naming
 * the variable and file when one cannot be read or holds no PEM block.
 */
export async function readNatsTls(files: NatsTlsFiles): Promise<NatsTlsPem> {
  const one = async (name: string, file: string | undefined) => {
    if (file === undefined) return undefined;
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch (err) {
      throw new Error(`${name}: cannot read file "${file}": ${(err as Error).name}`);
    }
    if (!/-----BEGIN [A-Z ]+-----/.test(text)) {
      throw new Error(`${name}: file "${file}" holds no PEM block`);
    }
    return text;
  };
  const [ca, cert, key] = await Promise.all([
    one("NATS_CA", files.caFile),
    one("NATS_CERT", files.certFile),
    one("NATS_KEY", files.keyFile),
  ]);
  return {
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
  };
}
