/**
 * JWT bearer tokens → {@linkcode Principal}. Verified with `jose` against exactly one key
 * source: an HS256 shared secret, an RS256/ES256 SPKI public key, or a local JWKS file (no
 * network). Only those algorithms are accepted (never `none`), `exp` is required and holds to
 * the second (no leeway unless `clockToleranceSec` says so), `nbf` is honoured, and every failure is an {@linkcode UnauthorizedError} with a short fixed reason
 * that never echoes the token.
 * @module
 */
import {
  createLocalJWKSet,
  errors,
  importSPKI,
  type JSONWebKeySet,
  type JWTPayload,
  jwtVerify,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
} from "jose";
import { UnauthorizedError } from "../errors.ts";
import { type Principal, type Role, ROLES } from "./principal.ts";

/** How to verify tokens. Give exactly one of `secret`, `publicKeyPem`, `jwksPath`. */
export interface JwtOptions {
  /** HS256 shared secret, at least 32 bytes (UTF-8). */
  secret?: string;
  /** RS256 (RSA ≥ 2048 bits) or ES256 (P-256) public key, SPKI PEM. */
  publicKeyPem?: string;
  /** Path of a local JWKS JSON file with RS256/ES256 public keys; read once, at creation. */
  jwksPath?: string;
  /** Required `iss`, when set. */
  issuer?: string;
  /** Required member of `aud`, when set. */
  audience?: string;
  /**
   * Seconds by which `exp` and `nbf` may be missed (clock skew between the issuer and this
   * node); default 0: a token is refused from the second its `exp` names.
   */
  clockToleranceSec?: number;
}

/** Turns a bearer token into the caller it names. */
export interface JwtVerifier {
  /** The token's principal; throws {@linkcode UnauthorizedError} when it is not acceptable. */
  verify(token: string): Promise<Principal>;
}

const MIN_SECRET_BYTES = 32;
const MIN_RSA_BITS = 2048;
type Key = Uint8Array | SpkiKey | JWTVerifyGetKey;

/**
 * Builds a verifier; throws an `Error` when the options are unusable (no or several key
 * sources, a short secret, a key that is not RSA ≥ 2048 or P-256, an unreadable JWKS file).
 *
 * @example
 * ```ts
 * const jwt = await createJwtVerifier({ secret: Deno.env.get("JWT_SECRET"), issuer: "idp" });
 * const principal = await jwt.verify(bearer); // { id: "jwt:alice", role: "operator", via: "jwt" }
 * ```
 */
export async function createJwtVerifier(opts: JwtOptions): Promise<JwtVerifier> {
  const sources = [opts.secret, opts.publicKeyPem, opts.jwksPath].filter((s) => s !== undefined);
  if (sources.length !== 1) {
    throw new Error(
      `Cannot create JWT verifier: give exactly one of secret, publicKeyPem, jwksPath (got ${sources.length})`,
    );
  }
  const clockTolerance = opts.clockToleranceSec ?? 0;
  if (!Number.isFinite(clockTolerance) || clockTolerance < 0) {
    throw new Error("Cannot create JWT verifier: clockToleranceSec must be a number >= 0");
  }
  let key: Key;
  let algorithms: string[];
  if (opts.secret !== undefined) {
    key = new TextEncoder().encode(opts.secret);
    if (key.byteLength < MIN_SECRET_BYTES) {
      throw new Error(
        `Cannot create JWT verifier: the HS256 secret must be at least ${MIN_SECRET_BYTES} bytes`,
      );
    }
    algorithms = ["HS256"];
  } else if (opts.publicKeyPem !== undefined) {
    [key, algorithms] = await importPem(opts.publicKeyPem);
  } else {
    key = await loadJwks(opts.jwksPath!);
    algorithms = ["RS256", "ES256"];
  }
  const options: JWTVerifyOptions = {
    algorithms,
    requiredClaims: ["exp"],
    clockTolerance,
    ...(opts.issuer !== undefined && { issuer: opts.issuer }),
    ...(opts.audience !== undefined && { audience: opts.audience }),
  };
  return {
    async verify(token) {
      if (typeof token !== "string" || token === "") {
        throw new UnauthorizedError("token is malformed");
      }
      let payload: JWTPayload;
      try {
        payload = await verifyWith(token, key, options);
      } catch (e) {
        throw new UnauthorizedError(reason(e));
      }
      return toPrincipal(payload);
    },
  };
}

/** What `importSPKI` gives (the Web Crypto key type, as jose declares it). */
type SpkiKey = Awaited<ReturnType<typeof importSPKI>>;

/** Imports an SPKI PEM as RS256 or, failing that, ES256 (P-256). */
async function importPem(pem: string): Promise<[SpkiKey, string[]]> {
  for (const alg of ["RS256", "ES256"]) {
    let key: SpkiKey;
    try {
      key = await importSPKI(pem, alg);
    } catch {
      continue;
    }
    const bits = (key.algorithm as Partial<RsaHashedKeyAlgorithm>).modulusLength;
    if (alg === "RS256" && (bits === undefined || bits < MIN_RSA_BITS)) {
      throw new Error(
        `Cannot create JWT verifier: the RSA key must be at least ${MIN_RSA_BITS} bits`,
      );
    }
    return [key, [alg]];
  }
  throw new Error(
    "Cannot create JWT verifier: publicKeyPem is not an RSA or P-256 EC public key in SPKI PEM",
  );
}

/** Reads and checks a JWKS file: JSON, public keys only, at least one RSA or P-256 key. */
async function loadJwks(path: string): Promise<JWTVerifyGetKey> {
  let jwks: JSONWebKeySet;
  try {
    jwks = JSON.parse(await Deno.readTextFile(path));
    if (!Array.isArray(jwks?.keys)) throw new Error('no "keys" array');
  } catch (e) {
    throw new Error(`Cannot create JWT verifier: JWKS file "${path}" is unusable: ${message(e)}`);
  }
  if (jwks.keys.some((k) => typeof k === "object" && k !== null && ("d" in k || k.kty === "oct"))) {
    throw new Error(`Cannot create JWT verifier: JWKS file "${path}" holds private or secret keys`);
  }
  const usable = jwks.keys.filter((k) =>
    (k?.kty === "RSA" && typeof k.n === "string" && rsaBits(k.n) >= MIN_RSA_BITS) ||
    (k?.kty === "EC" && k.crv === "P-256")
  );
  if (usable.length === 0) {
    throw new Error(
      `Cannot create JWT verifier: JWKS file "${path}" has no RSA (>= ${MIN_RSA_BITS} bits) or P-256 key`,
    );
  }
  try {
    return createLocalJWKSet({ keys: usable });
  } catch (e) {
    throw new Error(`Cannot create JWT verifier: JWKS file "${path}" is unusable: ${message(e)}`);
  }
}

/** Bits of an RSA modulus given as base64url. */
function rsaBits(n: string): number {
  const bytes = Math.floor(n.replace(/=+$/, "").length * 3 / 4);
  return bytes * 8;
}

/** Verifies; when several JWKS keys match the header (no `kid`), tries each in turn. */
async function verifyWith(token: string, key: Key, options: JWTVerifyOptions) {
  try {
    return (await jwtVerify(token, key, options)).payload;
  } catch (e) {
    if (!(e instanceof errors.JWKSMultipleMatchingKeys)) throw e;
    for await (const candidate of e) {
      try {
        return (await jwtVerify(token, candidate, options)).payload;
      } catch (inner) {
        if (!(inner instanceof errors.JWSSignatureVerificationFailed)) throw inner;
      }
    }
    throw new errors.JWSSignatureVerificationFailed();
  }
}

const CLAIM_REASONS: Record<string, string> = {
  nbf: "token not yet valid",
  iss: "token issuer is not accepted",
  aud: "token audience is not accepted",
};

/** A short, fixed reason for a verification failure: never the token or its claim values. */
function reason(e: unknown): string {
  if (e instanceof errors.JWTExpired) return "token expired";
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.claim === "exp") {
      return e.reason === "missing" ? "token has no expiry" : "token expiry is invalid";
    }
    return CLAIM_REASONS[e.claim] ?? "token claims are invalid";
  }
  if (e instanceof errors.JOSEAlgNotAllowed) return "token algorithm is not allowed";
  if (e instanceof errors.JWSSignatureVerificationFailed) return "token signature is invalid";
  if (e instanceof errors.JWKSNoMatchingKey) return "token signing key is unknown";
  if (e instanceof errors.JWSInvalid || e instanceof errors.JWTInvalid) return "token is malformed";
  if (e instanceof errors.JOSENotSupported) return "token uses an unsupported feature";
  return "token is invalid";
}

/** Checks the twinmill claims (`role`, `sites`, `sub`) and builds the principal. */
function toPrincipal(payload: JWTPayload): Principal {
  const { role, sites, sub } = payload;
  if (typeof role !== "string" || !(ROLES as readonly string[]).includes(role)) {
    throw new UnauthorizedError("token has no valid role");
  }
  if (
    sites !== undefined &&
    !(Array.isArray(sites) && sites.every((s) => typeof s === "string" && s !== ""))
  ) {
    throw new UnauthorizedError("token sites must be an array of non-empty strings");
  }
  if (sub !== undefined && (typeof sub !== "string" || sub === "")) {
    throw new UnauthorizedError("token subject is invalid");
  }
  const principal: Principal = { id: `jwt:${sub ?? "anonymous"}`, role: role as Role, via: "jwt" };
  if (sites !== undefined) principal.sites = [...sites as string[]];
  return principal;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
