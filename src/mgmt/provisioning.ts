/**
 * Zero-touch provisioning: fleet provisioning keys with a template, and the exchange of a key
 * for a device's own credentials.
 *
 * An admin creates a key (`tmpk_<12 hex>_<secret>`, shown once; stored as SHA-256 under its id
 * `pk_<12 hex>`, so a lookup is one read and the comparison is constant-time) with a template
 * of attributes, allow/deny patterns of twin ids, a quota of devices and an expiry. A new
 * device presents the key with its id and attributes (over MQTT as `$provision`, or
 * `POST /v1/provision`) and gets a token of its own; it then reconnects as itself.
 *
 * Quota is consumed with compare-and-set on the key's document (serialised per key on this
 * node, retried on another node's concurrent change), so the nodes of a cluster never issue
 * more than the quota. A short claim document per twin id keeps two requests for the same new
 * twin (a resent MQTT request, another node) from both creating it. Every attempt is audited
 * (`provision`, actor `provisioning-key:<id>`); no secret or token is logged or audited.
 * @module
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { Buffer } from "node:buffer";
import { isValidTwinId } from "../../actors/validate.ts";
import { BadRequestError, TwinmillError } from "../errors.ts";
import type { DocStore, DocStores } from "../persistence/doc_store.ts";
import type { ProvisioningPort } from "../connectors/mqtt/provisioning.ts";
import type { Logger } from "../obs/log.ts";
import {
  type AuditSink,
  type CredentialIssuer,
  invalidKey,
  type KeySpec,
  type KeyView,
  type ProvisionAnswer,
  PROVISIONING_LIMITS,
  ProvisioningError,
  type ProvisioningKey,
  type ProvisionRefusal,
  type ProvisionRequest,
  type ProvisionTwins,
} from "./provisioning_types.ts";
import {
  checkAttributes,
  checkKeySpec,
  checkPatterns,
  idRefusal,
  isKeyId,
  keyIdOf,
  keyView,
  parseRequest,
  provisionedAttributes,
  sha256,
} from "./provisioning_checks.ts";
import { exhausted, KeyQuota } from "./provisioning_quota.ts";
import { Refusals } from "./provisioning_refusals.ts";

/** Options of {@linkcode Provisioning.open}. */
export interface ProvisioningOptions {
  docs: DocStores;
  twins: ProvisionTwins;
  credentials: CredentialIssuer;
  audit: AuditSink;
  logger: Logger;
  clock?: { now(): number };
}

/**
 * Provisioning keys and the provisioning of devices with them; the MQTT broker's
 * {@linkcode ProvisioningPort}.
 */
export class Provisioning implements ProvisioningPort {
  readonly #o: ProvisioningOptions;
  readonly #keys: DocStore<ProvisioningKey>;
  readonly #quota: KeyQuota;
  readonly #now: () => number;
  readonly #refusals: Refusals;

  private constructor(
    o: ProvisioningOptions,
    keys: DocStore<ProvisioningKey>,
    claims: DocStore<{ at: number }>,
  ) {
    this.#o = o;
    this.#keys = keys;
    this.#quota = new KeyQuota(keys, claims);
    const clock = o.clock ?? { now: () => Date.now() };
    this.#now = () => clock.now();
    this.#refusals = new Refusals(o.audit, o.logger, this.#now);
  }

  /** Open the stores (`provisioning_keys`, `provisioning_claims`). */
  static async open(o: ProvisioningOptions): Promise<Provisioning> {
    return new Provisioning(
      o,
      await o.docs.open<ProvisioningKey>("provisioning_keys"),
      await o.docs.open<{ at: number }>("provisioning_claims"),
    );
  }

  /** Create a key; the secret is returned only here. */
  async createKey(spec: KeySpec): Promise<{ key: KeyView; secret: string }> {
    const now = this.#now();
    const { name, quota, expiresAt, template } = checkKeySpec(spec, now);
    const existing = await this.#keys.list();
    if (existing.length >= PROVISIONING_LIMITS.maxKeys) {
      throw new TwinmillError(
        "too_many_provisioning_keys",
        409,
        `There are ${existing.length} provisioning keys; delete unused ones first`,
      );
    }
    const hex = randomBytes(6).toString("hex");
    const secret = `tmpk_${hex}_${randomBytes(32).toString("base64url")}`;
    const key: ProvisioningKey = {
      id: `pk_${hex}`,
      name,
      hash: sha256(secret),
      template,
      allow: checkPatterns(spec.allow, "allow"),
      deny: checkPatterns(spec.deny, "deny"),
      quota,
      used: 0,
      expiresAt,
      createdAt: now,
      reprovision: spec.reprovision ?? false,
      lastUsedAt: null,
    };
    if (!(await this.#keys.put(key.id, key, null))) {
      throw new Error(`Cannot create provisioning key "${key.id}": the id is taken`);
    }
    this.#o.logger.info("provisioning key created", {
      provisioner: key.id,
      name,
      quota,
      expiresAt: new Date(expiresAt).toISOString(),
    });
    return { key: keyView(key), secret };
  }

  /** Every key (without hashes), in id order. */
  async listKeys(): Promise<KeyView[]> {
    return (await this.#keys.list()).map((d) => keyView(d.value));
  }

  /** One key (without its hash), or null. */
  async getKey(id: string): Promise<KeyView | null> {
    if (!isKeyId(id)) return null;
    const d = await this.#keys.get(id);
    return d ? keyView(d.value) : null;
  }

  /** Revoke a key: deleted, so it authenticates nothing any more. True if it existed. */
  async deleteKey(id: string): Promise<boolean> {
    if (!isKeyId(id)) return false;
    const existed = await this.#keys.delete(id);
    if (existed) this.#o.logger.info("provisioning key revoked", { provisioner: id });
    return existed;
  }

  /** The stored key `secret` is, or a refusal (invalid or expired). */
  async #authenticate(secret: string): Promise<ProvisioningKey> {
    const id = keyIdOf(secret);
    if (!id) throw invalidKey();
    const d = await this.#keys.get(id);
    if (!d) throw invalidKey();
    const a = Buffer.from(d.value.hash, "hex");
    const b = Buffer.from(sha256(secret), "hex");
    if (a.length !== b.length || !timingSafeEqual(a, b)) throw invalidKey();
    if (d.value.expiresAt <= this.#now()) {
      throw new ProvisioningError(
        "provisioning_key_expired",
        401,
        `Provisioning key "${id}" expired at ${new Date(d.value.expiresAt).toISOString()}`,
      );
    }
    return d.value;
  }

  /** {@linkcode ProvisioningPort.check}: may this key log in to provision (MQTT CONNECT)? */
  async check(secret: string): Promise<string | null> {
    try {
      await this.#authenticate(secret);
      return null;
    } catch (err) {
      if (!(err instanceof ProvisioningError)) throw err;
      this.#refusals.record(keyIdOf(secret), err, { via: "mqtt", stage: "connect" });
      return err.code;
    }
  }

  /** {@linkcode ProvisioningPort.handle}: answer one MQTT request (never throws a refusal). */
  async handle(
    secret: string,
    clientId: string,
    payload: Uint8Array,
  ): Promise<ProvisionAnswer | ProvisionRefusal> {
    const req = parseRequest(payload, clientId);
    try {
      return await this.provision(secret, req, { via: "mqtt", client: clientId });
    } catch (err) {
      if (err instanceof TwinmillError) {
        return { status: "error", error: { code: err.code, message: err.message } };
      }
      throw err;
    }
  }

  /**
   * Provision a device with a key: refused with a {@linkcode ProvisioningError} (or a 400
   * `bad_request` / `bad_twin_id` / `bad_attributes`); on success the twin exists with the
   * template's attributes and the answer holds the device's new token. `req` is a string when
   * the request body could not be read: why (refused as `bad_request` once the key is checked).
   */
  async provision(
    secret: string,
    req: ProvisionRequest | string,
    ctx: { via: "http" | "mqtt"; client?: string; requestId?: string },
  ): Promise<ProvisionAnswer> {
    const keyId = keyIdOf(secret);
    const where = { via: ctx.via, ...(ctx.client ? { client: ctx.client.slice(0, 128) } : {}) };
    const twin = typeof req === "object" && typeof req.id === "string"
      ? req.id.slice(0, 128)
      : undefined;
    let consumed = false;
    let claimed: string | undefined;
    try {
      const key = await this.#authenticate(secret);
      if (typeof req === "string") throw new BadRequestError(req, "bad_request");
      if (typeof req.id !== "string" || !isValidTwinId(req.id)) {
        throw new BadRequestError("id must be 1-128 of A-Z a-z 0-9 _ - . :", "bad_twin_id");
      }
      const id = req.id;
      const device = checkAttributes(req.attributes, "attributes");
      const why = idRefusal(key, id);
      if (why) throw new ProvisioningError("device_not_allowed", 403, why);
      if (key.used >= key.quota) throw exhausted(key);
      await this.#quota.claim(id, this.#now());
      claimed = id;
      if (!key.reprovision && (await this.#o.twins.get(id))) {
        throw new ProvisioningError(
          "twin_exists",
          409,
          `Twin "${id}" already exists; this key may not provision it again`,
        );
      }
      const now = this.#now();
      await this.#quota.consume(key.id, now);
      consumed = true;
      const { attributes, ignored } = provisionedAttributes(device, key.template, key.id, now);
      await this.#o.twins.putAttributes(id, attributes);
      const issued = await this.#o.credentials.create(id);
      this.#o.audit.record({
        actor: `provisioning-key:${key.id}`,
        action: "provision",
        target: id,
        result: "ok",
        requestId: ctx.requestId,
        detail: { ...where, credential: issued.id },
      });
      this.#o.logger.info("device provisioned", {
        twin: id,
        provisioner: key.id,
        via: ctx.via,
        credential: issued.id,
      });
      return {
        status: "ok",
        id,
        credentials: issued.credentials,
        ignoredAttributes: ignored,
        mqtt: {
          username: id,
          topics: {
            telemetry: `twins/${id}/telemetry`,
            reported: `twins/${id}/reported`,
            status: `twins/${id}/status`,
            desired: `twins/${id}/desired`,
            commands: `twins/${id}/commands/+`,
          },
        },
      };
    } catch (err) {
      if (consumed) await this.#quota.release(keyId!).catch(() => {});
      if (err instanceof TwinmillError) {
        this.#refusals.record(keyId, err, { ...where, ...(twin ? { twin } : {}) }, ctx.requestId);
      } else {
        this.#o.audit.record({
          actor: `provisioning-key:${keyId ?? "unknown"}`,
          action: "provision",
          target: twin,
          result: "failed",
          requestId: ctx.requestId,
          detail: { ...where, code: "internal" },
        });
      }
      throw err;
    } finally {
      if (claimed) await this.#quota.unclaim(claimed).catch(() => {});
    }
  }
}
