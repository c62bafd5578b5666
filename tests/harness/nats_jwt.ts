/**
 * Decentralized JWT authentication for tests, without `nsc`: an operator, a system account, an
 * account with JetStream and a user of it, each as an nkey and a signed JWT (`ed25519-nkey`),
 * the nats-server configuration that trusts them (memory resolver, preloaded) and the user's
 * credentials file, as `nsc generate creds` writes it.
 *
 * @example
 * ```ts
 * const op = operatorSetup();
 * await using nats = await startNats({ jetstream: true, extra: op.serverConfig });
 * await Deno.writeTextFile(`${dir}/node.creds`, op.creds);
 * ```
 * @module
 */
import { nkeys } from "@nats-io/transport-node";

/** An nkey pair (nats-core does not export its type). */
type KeyPair = ReturnType<typeof nkeys.createUser>;

const enc = new TextEncoder();

function b64url(bytes: Uint8Array | string): string {
  const b = typeof bytes === "string" ? enc.encode(bytes) : bytes;
  return btoa(String.fromCharCode(...b)).replace(/=+$/, "").replace(/\+/g, "-").replace(
    /\//g,
    "_",
  );
}

/** A JWT of `claims` about `subject`, issued and signed by `issuer`. */
function jwt(
  issuer: KeyPair,
  subject: string,
  name: string,
  nats: Record<string, unknown>,
): string {
  const header = b64url(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" }));
  const claims = {
    jti: crypto.randomUUID().replace(/-/g, "").toUpperCase(),
    iat: Math.floor(Date.now() / 1000),
    iss: issuer.getPublicKey(),
    name,
    sub: subject,
    nats: { ...nats, version: 2 },
  };
  const body = `${header}.${b64url(JSON.stringify(claims))}`;
  return `${body}.${b64url(issuer.sign(enc.encode(body)))}`;
}

const UNLIMITED = {
  subs: -1,
  conn: -1,
  leaf: -1,
  imports: -1,
  exports: -1,
  data: -1,
  payload: -1,
  wildcards: true,
};

/** A trusted operator with one user: what the server needs and what the client needs. */
export interface OperatorSetup {
  /** nats-server configuration lines: operator, system account, memory resolver. */
  serverConfig: string;
  /** The user's credentials file (its JWT and nkey seed). */
  creds: string;
  /** The same user's credentials signed by an account the server does not know. */
  foreignCreds: string;
}

function credsOf(userJwt: string, user: KeyPair): string {
  const seed = new TextDecoder().decode(user.getSeed());
  return `-----BEGIN NATS USER JWT-----\n${userJwt}\n------END NATS USER JWT------\n\n` +
    "************************* IMPORTANT *************************\n" +
    "NKEY Seed printed below can be used to sign and prove identity.\n\n" +
    `-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`;
}

/** Builds an operator, its system account, an account with JetStream and one user. */
export function operatorSetup(): OperatorSetup {
  const op = nkeys.createOperator();
  const sys = nkeys.createAccount();
  const acc = nkeys.createAccount();
  const user = nkeys.createUser();
  const opJwt = jwt(op, op.getPublicKey(), "twinmill-test", { type: "operator" });
  const sysJwt = jwt(op, sys.getPublicKey(), "SYS", { type: "account", limits: UNLIMITED });
  const accJwt = jwt(op, acc.getPublicKey(), "TWINMILL", {
    type: "account",
    limits: {
      ...UNLIMITED,
      mem_storage: -1,
      disk_storage: -1,
      streams: -1,
      consumer: -1,
    },
  });
  const userClaims = { type: "user", pub: {}, sub: {}, subs: -1, data: -1, payload: -1 };
  const userJwt = jwt(acc, user.getPublicKey(), "node", userClaims);
  const stranger = nkeys.createAccount();
  const foreignJwt = jwt(stranger, user.getPublicKey(), "node", userClaims);
  return {
    serverConfig: `operator: "${opJwt}"\n` +
      `system_account: "${sys.getPublicKey()}"\n` +
      "resolver: MEMORY\n" +
      `resolver_preload: {\n  ${sys.getPublicKey()}: "${sysJwt}"\n` +
      `  ${acc.getPublicKey()}: "${accJwt}"\n}\n`,
    creds: credsOf(userJwt, user),
    foreignCreds: credsOf(foreignJwt, user),
  };
}
