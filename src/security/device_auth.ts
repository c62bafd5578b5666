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
import { crlSerials, looksLikeCrl } from "./crl.ts";
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
  /** A certificate serial was revoked here: tell every node (cluster). */
  announceRevokedCert?(serial: string): void;
  /** Disconnect devices connected with the certificate `serial` on this node. */
  disconnectCert?(serial: string): void;
  /**
   * Revoked serials by file (`TWINMILL_TLS_REVOKED`), re-read on reload: an X.509 CRL (PEM,
   * its signature checked against `caFile`) or a list of serials, one per line.
   */
  revokedFile?: string;
  /** The CA of device certificates (checks a CRL's signature). */
  caFile?: string;
}

/** Normalise a certificate serial: upper-case hex without separators or leading zeros. */
export function normSerial(s: string): string {
  return s.replace(/[^0-9a-fA-F]/g, "").toUpperCase().replace(/^0+(?=.)/, "");
}

/** Device credentials of every twin. */
export class DeviceAuth {
  readonly #cache = new Map<string, { list: CredentialRecord[]; until: number }>();
  readonly #lastUsed = new Map<string, number>();
  #revoked = new Set<string>();
  #revokedAt = 0;
  constructor(readonly o: DeviceAuthOptions) {}

  /** Re-read revoked certificate serials from the store and the file. */
  async loadRevoked(): Promise<number> {
    const { serials } = await this.o.store.getRevoked();
    const all = new Set(serials.map(normSerial));
    if (this.o.revokedFile) {
      const text = await Deno.readTextFile(this.o.revokedFile);
      if (looksLikeCrl(text)) {
        const ca = this.o.caFile ? await Deno.readTextFile(this.o.caFile) : undefined;
        for (const serial of crlSerials(text, ca)) all.add(serial);
      } else {
        for (const line of text.split("\n")) {
          const t = line.replace(/#.*/, "").trim();
          if (t) all.add(normSerial(t));
        }
      }
    }
    this.#revoked = all;
    this.#revokedAt = this.o.clock.now();
    return all.size;
  }

  /** True when a client certificate serial is revoked (store and file; re-read every 30 s). */
  async isRevoked(serial: string): Promise<boolean> {
    if (this.o.clock.now() - this.#revokedAt > 30_000) {
      await this.loadRevoked().catch((err) =>
        this.o.logger.warn("cannot re-read revoked certificates", { err })
      );
    }
    return this.#revoked.has(normSerial(serial));
  }

  /** Revoke a client certificate by serial: stored, every node told, its devices dropped. */
  async revokeCertificate(serial: string): Promise<{ serial: string; created: boolean }> {
    const norm = normSerial(serial);
    if (!/^[0-9A-F]{1,40}$/.test(norm)) {
      throw new BadRequestError("serial must be the certificate serial number in hex");
    }
    let created = false;
    await compareAndSet(
      () => this.o.store.getRevoked().then((v) => ({ value: v.serials, version: v.version })),
      (next, version) => this.o.store.setRevoked(next, version),
      (serials) => {
        created = !serials.includes(norm); // set again on every attempt; true once written
        return created ? [...serials, norm] : undefined;
      },
      12,
      "Cannot revoke: too many concurrent changes",
    );
    this.certRevoked(norm);
    if (created) {
      this.o.logger.info("client certificate revoked", { serial: norm });
      this.o.announceRevokedCert?.(norm);
    }
    return { serial: norm, created };
  }

  /** A certificate was revoked (here or on another node). */
  certRevoked(serial: string): void {
    this.#revoked.add(normSerial(serial));
    this.o.disconnectCert?.(normSerial(serial));
  }

  /** Revoked serials known to this node. */
  get revokedSerials(): string[] {
    return [...this.#revoked].sort();
  }

  /** Change a twin's credentials with compare-and-set, retrying on a concurrent change. */
  async #change(
    twin: string,
    f: (list: CredentialRecord[]) => CredentialRecord[],
  ): Promise<CredentialRecord[]> {
    const before = await compareAndSet(
      () => this.o.store.get(twin).then((v) => ({ value: v.list, version: v.version })),
      (next, version) => this.o.store.set(twin, next, version),
      f,
      10,
      `Cannot change the credentials of "${twin}": too many concurrent changes`,
    );
    this.#cache.delete(twin);
    return before;
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

/**
 * Read, change, write if unchanged since the read; retry on a concurrent change. `change`
 * returning undefined means nothing to write. Resolves with the value read last.
 */
async function compareAndSet<T, V>(
  read: () => Promise<{ value: T; version: V }>,
  write: (next: T, version: V) => Promise<boolean>,
  change: (value: T) => T | undefined,
  attempts: number,
  tooMany: string,
): Promise<T> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    const cur = await read();
    const next = change(cur.value);
    if (next === undefined || await write(next, cur.version)) return cur.value;
  }
  throw new Error(tooMany);
}
