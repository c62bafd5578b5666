/**
 * Device credentials: random tokens of 256 bits, shown once, stored only as SHA-256 hashes
 * (a token this random needs no slow hash), compared in constant time. Kept per twin behind
 * the {@linkcode CredentialStore} port (memory, Deno KV, JetStream KV), with compare-and-set
 * so two nodes changing one twin's credentials never lose a change.
 * @module
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { twinKey } from "../persistence/jetstream_kv.ts";
import { openBucket } from "../persistence/kv_bucket.ts";
import { TwinmillError } from "../errors.ts";

/** One credential as stored (never the token). */
export interface CredentialRecord {
  id: string;
  /** SHA-256 of the token, hex. */
  hash: string;
  /** ms since the epoch. */
  createdAt: number;
}

/** A twin's credentials and the version they were read at (for compare-and-set). */
export interface Versioned {
  list: CredentialRecord[];
  /** Opaque; null when the twin has none stored. */
  version: string | number | null;
}

/** Where credentials live. */
export interface CredentialStore extends AsyncDisposable {
  get(twin: string): Promise<Versioned>;
  /** Write if still at `version`; false when someone changed them meanwhile. */
  set(twin: string, list: CredentialRecord[], version: Versioned["version"]): Promise<boolean>;
  /** Revoked client certificate serials (upper-case hex) and their version. */
  getRevoked(): Promise<{ serials: string[]; version: Versioned["version"] }>;
  /** Write if still at `version`. */
  setRevoked(serials: string[], version: Versioned["version"]): Promise<boolean>;
}

/** The credential does not exist. */
export class CredentialNotFoundError extends TwinmillError {
  override name = "CredentialNotFoundError";
  constructor(twin: string, id: string) {
    super("credential_not_found", 404, `Twin "${twin}" has no credential "${id}"`);
  }
}

/** Most credentials one twin may hold (rotation needs two). */
export const MAX_CREDENTIALS = 10;

/** SHA-256 of a token, hex. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** A fresh token: 32 random bytes, base64url. */
export function newToken(): string {
  return randomBytes(32).toString("base64url");
}

/** Id of the credential of `list` whose hash matches `token` (constant time per entry). */
export function matchToken(list: CredentialRecord[], token: string): string | null {
  const h = Buffer.from(hashToken(token), "hex");
  let found: string | null = null;
  for (const c of list) {
    const stored = Buffer.from(c.hash, "hex");
    if (stored.length === h.length && timingSafeEqual(stored, h)) found = c.id;
  }
  return found;
}

/** Credentials in a Deno KV file (single node), key `["credentials", twin]`. */
export async function denoKvCredentialStore(path: string): Promise<CredentialStore> {
  const kv = await Deno.openKv(path);
  const RK = ["revoked_certificates"];
  return {
    async getRevoked() {
      const e = await kv.get<string[]>(RK);
      return { serials: e.value ?? [], version: e.versionstamp };
    },
    async setRevoked(serials, version) {
      const r = await kv.atomic().check({ key: RK, versionstamp: version as string | null })
        .set(RK, serials).commit();
      return r.ok;
    },
    async get(twin) {
      const e = await kv.get<CredentialRecord[]>(["credentials", twin]);
      return { list: e.value ?? [], version: e.versionstamp };
    },
    async set(twin, list, version) {
      const key = ["credentials", twin];
      const op = kv.atomic().check({ key, versionstamp: version as string | null });
      const r = list.length === 0
        ? await op.delete(key).commit()
        : await op.set(key, list).commit();
      return r.ok;
    },
    [Symbol.asyncDispose]: () => Promise.resolve(kv.close()),
  };
}

/** Credentials in JetStream KV bucket `tm_credentials` (cluster mode). */
export async function jetstreamCredentialStore(
  nc: NatsConnection,
  opts: { replicas?: number; bucket?: string } = {},
): Promise<CredentialStore> {
  const kv = await openBucket(nc, opts.bucket ?? "tm_credentials", {
    replicas: opts.replicas ?? 1,
    history: 1,
    allow_direct: false,
  });
  const RK = "=revoked"; // "=" never appears in an encoded twin id's key
  return {
    async getRevoked() {
      const e = await kv.get(RK);
      if (!e || e.operation !== "PUT") return { serials: [], version: e?.revision ?? null };
      return { serials: e.json<string[]>(), version: e.revision };
    },
    async setRevoked(serials, version) {
      try {
        const data = new TextEncoder().encode(JSON.stringify(serials));
        if (version === null) await kv.create(RK, data);
        else await kv.update(RK, data, version as number);
        return true;
      } catch {
        return false;
      }
    },
    async get(twin) {
      const e = await kv.get(twinKey(twin));
      if (!e || e.operation !== "PUT") return { list: [], version: e?.revision ?? null };
      return { list: e.json<CredentialRecord[]>(), version: e.revision };
    },
    async set(twin, list, version) {
      try {
        const data = new TextEncoder().encode(JSON.stringify(list));
        if (version === null) await kv.create(twinKey(twin), data);
        else await kv.update(twinKey(twin), data, version as number);
        return true;
      } catch {
        return false; // wrong last sequence: changed meanwhile
      }
    },
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}
