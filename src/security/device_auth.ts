/**
 * Device credentials as a service: create (the token is returned once), list (ids and times,
 * never the token), revoke (devices connected with it are disconnected at once, on every
 * node), and verify at MQTT CONNECT. Verification reads the store through a short cache that
 * a revocation clears on every node.
 * @module
 */
import { randomBytes } from "node:crypto";
import {
  CredentialNotFoundError,
  type CredentialRecord,
  type CredentialStore,
  hashToken,
  matchToken,
  MAX_CREDENTIALS,
  newToken,
} from "./credentials.ts";
import { BadRequestError } from "../errors.ts";
import type { Logger } from "../obs/log.ts";

/** What `POST /v1/twins/{id}/credentials` answers (the only time the token is shown). */
export interface IssuedCredential {
  id: string;
  credentials: { type: "token"; username: string; token: string };
  createdAt: number;
}

/** A credential as listed. */
export interface CredentialInfo {
  id: string;
  createdAt: number;
  /** Last successful MQTT connect with it on this node since it started, or null. */
  lastUsedAt: number | null;
}

/** Options of {@linkcode DeviceAuth}. */
export interface DeviceAuthOptions {
  store: CredentialStore;
  logger: Logger;
  clock: { now(): number };
  /** A credential was revoked here: tell every node (cluster) — this node is told too. */
  announceRevoked?(twin: string, id: string): void;
  /** Disconnect devices of `twin` connected with credential `id` on this node. */
  disconnect?(twin: string, id: string): void;
  /** How long a twin's credentials are cached for CONNECT checks (ms). Default 5000. */
  cacheMs?: number;
}

/** Device credentials of every twin. */
export class DeviceAuth {
  readonly #cache = new Map<string, { list: CredentialRecord[]; until: number }>();
  readonly #lastUsed = new Map<string, number>();
  constructor(readonly o: DeviceAuthOptions) {}

  /** Change a twin's credentials with compare-and-set, retrying on a concurrent change. */
  async #change(
    twin: string,
    f: (list: CredentialRecord[]) => CredentialRecord[],
  ): Promise<CredentialRecord[]> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const cur = await this.o.store.get(twin);
      const next = f(cur.list);
      if (await this.o.store.set(twin, next, cur.version)) {
        this.#cache.delete(twin);
        return cur.list;
      }
    }
    throw new Error(`Cannot change the credentials of "${twin}": too many concurrent changes`);
  }

  /** Issue a new token for `twin`. */
  async create(twin: string): Promise<IssuedCredential> {
    const token = newToken();
    const rec: CredentialRecord = {
      id: `cred_${randomBytes(6).toString("hex")}`,
      hash: hashToken(token),
      createdAt: this.o.clock.now(),
    };
    await this.#change(twin, (list) => {
      if (list.length >= MAX_CREDENTIALS) {
        throw new BadRequestError(
          `Twin "${twin}" already has ${MAX_CREDENTIALS} credentials; revoke one first`,
          "too_many_credentials",
        );
      }
      return [...list, rec];
    });
    this.o.logger.info("device credential created", { twin, credential: rec.id });
    return {
      id: rec.id,
      credentials: { type: "token", username: twin, token },
      createdAt: rec.createdAt,
    };
  }

  /** Credential ids and times of `twin`. */
  async list(twin: string): Promise<CredentialInfo[]> {
    const { list } = await this.o.store.get(twin);
    return list.map((c) => ({
      id: c.id,
      createdAt: c.createdAt,
      lastUsedAt: this.#lastUsed.get(`${twin}\u0000${c.id}`) ?? null,
    }));
  }

  /** Revoke at once: stored, cached copies dropped, connected devices disconnected. */
  async revoke(twin: string, id: string): Promise<void> {
    let found = false;
    await this.#change(twin, (list) => {
      found = list.some((c) => c.id === id);
      return list.filter((c) => c.id !== id);
    });
    if (!found) throw new CredentialNotFoundError(twin, id);
    this.o.logger.info("device credential revoked", { twin, credential: id });
    this.revoked(twin, id);
    this.o.announceRevoked?.(twin, id);
  }

  /** A credential was revoked (here or on another node). */
  revoked(twin: string, id: string): void {
    this.#cache.delete(twin);
    this.o.disconnect?.(twin, id);
  }

  /** The credential id `token` belongs to for `twin`, or null. */
  async verify(twin: string, token: string): Promise<string | null> {
    const now = this.o.clock.now();
    let c = this.#cache.get(twin);
    let id = c && c.until >= now ? matchToken(c.list, token) : null;
    if (!id) {
      // not cached, expired, or created since: read the store
      const { list } = await this.o.store.get(twin);
      c = { list, until: now + (this.o.cacheMs ?? 5000) };
      if (this.#cache.size > 100_000) this.#cache.clear();
      this.#cache.set(twin, c);
      id = matchToken(c.list, token);
    }
    if (id) this.#lastUsed.set(`${twin}\u0000${id}`, now);
    return id;
  }
}
