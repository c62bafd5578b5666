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
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { Buffer } from "node:buffer";
import { isValidTwinId, MAX_PAYLOAD_BYTES } from "../../actors/validate.ts";
import { attributeNameProblem } from "../../actors/attributes.ts";
import { readJson } from "../../actors/json_intake.ts";
import type { JsonObject } from "../../actors/json.ts";
import type { TwinState } from "../../actors/twin.ts";
import { BadRequestError, TwinmillError } from "../errors.ts";
import type { DocStore, DocStores } from "../persistence/doc_store.ts";
import type { AuditInput } from "../security/audit.ts";
import type { IssuedCredential } from "../security/device_auth.ts";
import type { ProvisioningPort } from "../bridges/mqtt_broker.ts";
import type { Logger } from "../obs/log.ts";

/** Limits of provisioning keys and requests. */
export const PROVISIONING_LIMITS = {
  /** Most keys stored at once (expired ones count until deleted). */
  maxKeys: 1000,
  defaultQuota: 100,
  maxQuota: 100_000,
  /** Default lifetime of a key. */
  defaultTtlMs: 30 * 86_400_000,
  /** Longest lifetime of a key. */
  maxTtlMs: 365 * 86_400_000,
  /** Most allow or deny patterns of a key. */
  maxPatterns: 100,
  /** Most attributes a device or template may send. */
  maxAttributes: 64,
  /** Longest attribute string value. */
  maxValueLength: 1024,
  /** How long a claim on a new twin id holds (a crashed request's claim then lapses). */
  claimMs: 60_000,
} as const;

/** Attribute values: scalars, as in `PUT /v1/twins/{id}`. */
export type AttributeValue = string | number | boolean;

/** What every device provisioned with a key gets. */
export interface ProvisioningTemplate {
  type?: string;
  site?: string;
  profile?: string;
  attributes?: Record<string, AttributeValue>;
}

/** A key as an admin asks for it. */
export interface KeySpec {
  name: string;
  template?: ProvisioningTemplate;
  /** Twin ids or globs with `*` (anchored); absent or empty: any id. */
  allow?: string[];
  /** Twin ids or globs with `*`; deny wins over allow. */
  deny?: string[];
  /** Most devices it may provision. Default 100. */
  quota?: number;
  /** ms since the epoch; default 30 days from now, at most 365 days. */
  expiresAt?: number;
  /** May it provision an id whose twin already exists (replacing its attributes)? */
  reprovision?: boolean;
}

/** A key as stored (the secret only as its SHA-256). */
export interface ProvisioningKey {
  id: string;
  name: string;
  /** SHA-256 of the whole key, hex. */
  hash: string;
  template: ProvisioningTemplate;
  allow: string[];
  deny: string[];
  quota: number;
  used: number;
  expiresAt: number;
  createdAt: number;
  reprovision: boolean;
  lastUsedAt: number | null;
}

/** A key as listed: everything but its hash. */
export type KeyView = Omit<ProvisioningKey, "hash">;

/** A device's provisioning request. */
export interface ProvisionRequest {
  id?: unknown;
  attributes?: unknown;
}

/** A successful provisioning answer (HTTP 201 body; MQTT response payload). */
export interface ProvisionAnswer {
  status: "ok";
  id: string;
  credentials: { type: "token"; username: string; token: string };
  /** Device attributes that the key's template sets instead (type, site, profile, ...). */
  ignoredAttributes: string[];
  mqtt: {
    username: string;
    topics: Record<"telemetry" | "reported" | "status" | "desired" | "commands", string>;
  };
}

/** A refused or failed request, as MQTT devices get it. */
export interface ProvisionRefusal {
  status: "error";
  error: { code: string; message: string };
}

/** Why a provisioning request was refused; `code` is stable, `status` the HTTP status. */
export class ProvisioningError extends TwinmillError {
  override name = "ProvisioningError";
  constructor(code: string, status: number, message: string) {
    super(code, status, message);
  }
}

const invalidKey = () =>
  new ProvisioningError("provisioning_key_invalid", 401, "Unknown or revoked provisioning key");

/** No key with this id. */
export class ProvisioningKeyNotFoundError extends TwinmillError {
  override name = "ProvisioningKeyNotFoundError";
  constructor(id: string) {
    super("provisioning_key_not_found", 404, `Provisioning key "${id}" not found`);
  }
}

/** Where audit entries go (an `AuditLog` or `JetStreamAudit`). */
export interface AuditSink {
  record(e: AuditInput): void;
}

/** What provisioning needs of the twins (the wrapped twin service of the node). */
export type ProvisionTwins = {
  get(id: string): Promise<TwinState | null>;
  putAttributes(id: string, attributes: JsonObject): Promise<TwinState>;
};

/** What provisioning needs to issue a device token (`DeviceAuth`). */
export interface CredentialIssuer {
  create(twin: string): Promise<IssuedCredential>;
}

/** Options of {@linkcode Provisioning.open}. */
export interface ProvisioningOptions {
  docs: DocStores;
  twins: ProvisionTwins;
  credentials: CredentialIssuer;
  audit: AuditSink;
  logger: Logger;
  clock?: { now(): number };
}

const KEY_RE = /^tmpk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;
const KEY_ID_RE = /^pk_[0-9a-f]{12}$/;
const PATTERN_RE = /^[A-Za-z0-9_.:*-]{1,128}$/;
/** Attributes only the template may set: they decide scope, rules and origin. */
const RESERVED = ["type", "site", "profile", "provisionedBy", "provisionedAt"];

/** The key id of a provisioning key (`pk_<hex>`), or null when it is not shaped like one. */
export function keyIdOf(key: string): string | null {
  const m = KEY_RE.exec(key);
  return m ? `pk_${m[1]}` : null;
}

/** True when a key id has the shape of one (`pk_` and 12 hex digits). */
export function isKeyId(id: string): boolean {
  return KEY_ID_RE.test(id);
}

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

/**
 * True when twin id `id` matches `pattern`: an exact id, or a glob where `*` stands for any
 * run of characters, anchored at both ends.
 * @example
 * ```ts
 * globMatch("press-*", "press-7"); // true
 * globMatch("press-*", "xpress-7"); // false
 * ```
 */
export function globMatch(pattern: string, id: string): boolean {
  if (!pattern.includes("*")) return pattern === id;
  const parts = pattern.split("*");
  if (!id.startsWith(parts[0])) return false;
  let at = parts[0].length;
  const last = parts[parts.length - 1];
  for (let i = 1; i < parts.length - 1; i++) {
    const j = id.indexOf(parts[i], at);
    if (j < 0) return false;
    at = j + parts[i].length;
  }
  return id.length - last.length >= at && id.endsWith(last);
}

/** Null when a key lets `id` be provisioned, else why not. */
export function idRefusal(key: Pick<ProvisioningKey, "allow" | "deny">, id: string): string | null {
  const denied = key.deny.find((p) => globMatch(p, id));
  if (denied) return `Twin id "${id}" is on the key's deny-list (${denied})`;
  if (key.allow.length > 0 && !key.allow.some((p) => globMatch(p, id))) {
    return `Twin id "${id}" is not on the key's allow-list`;
  }
  return null;
}

/** Validate attribute values (scalars, bounded); throws `code` naming the first bad one. */
export function checkAttributes(
  v: unknown,
  what: string,
  code = "bad_attributes",
): Record<string, AttributeValue> {
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) {
    throw new BadRequestError(`${what} must be a JSON object`, code);
  }
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length > PROVISIONING_LIMITS.maxAttributes) {
    throw new BadRequestError(
      `${what} has ${entries.length} entries; at most ${PROVISIONING_LIMITS.maxAttributes}`,
      code,
    );
  }
  const out: Record<string, AttributeValue> = {};
  for (const [k, x] of entries) {
    const problem = attributeNameProblem(k);
    if (problem) throw new BadRequestError(`${what}: ${problem}`, code);
    const ok = typeof x === "boolean" || (typeof x === "number" && Number.isFinite(x)) ||
      (typeof x === "string" && x.length <= PROVISIONING_LIMITS.maxValueLength);
    if (!ok) {
      throw new BadRequestError(
        `${what}.${
          k.slice(0, 128)
        } must be a string (at most ${PROVISIONING_LIMITS.maxValueLength} characters), a number or a boolean`,
        code,
      );
    }
    out[k] = x as AttributeValue;
  }
  return out;
}

/**
 * The attributes of a provisioned twin: the device's, less the reserved ones (`type`, `site`,
 * `profile`, `provisionedBy`, `provisionedAt`), overlaid by the template's; plus
 * `provisionedBy` (the key id). A device cannot choose its site, type or profile.
 */
export function provisionedAttributes(
  device: Record<string, AttributeValue>,
  template: ProvisioningTemplate,
  keyId: string,
  at: number,
): { attributes: Record<string, AttributeValue>; ignored: string[] } {
  const attributes: Record<string, AttributeValue> = {};
  const ignored: string[] = [];
  for (const [k, v] of Object.entries(device)) {
    if (RESERVED.includes(k)) ignored.push(k);
    else attributes[k] = v;
  }
  Object.assign(attributes, template.attributes ?? {});
  for (const k of ["type", "site", "profile"] as const) {
    if (template[k] !== undefined) attributes[k] = template[k]!;
  }
  for (const k of Object.keys(device)) {
    if (!RESERVED.includes(k) && template.attributes?.[k] !== undefined) ignored.push(k);
  }
  attributes.provisionedBy = keyId;
  attributes.provisionedAt = new Date(at).toISOString();
  return { attributes, ignored };
}

/**
 * A device's request from an MQTT payload: `{id?, attributes?}` with the client id as the
 * default id; a string saying why when it is not such an object.
 */
export function parseRequest(payload: Uint8Array, clientId: string): ProvisionRequest | string {
  if (payload.byteLength > MAX_PAYLOAD_BYTES) {
    return `The request is over ${MAX_PAYLOAD_BYTES} bytes`;
  }
  let v: unknown = {};
  if (payload.byteLength > 0) {
    // the one JSON intake, as for device messages (its default limits)
    const r = readJson(new TextDecoder().decode(payload));
    if (!r.ok) {
      return r.violation.code === "not_json"
        ? "The request is not JSON"
        : `The request is refused: ${r.violation.message}`;
    }
    v = r.value;
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    return 'The request must be a JSON object {"id", "attributes"}';
  }
  const r = v as ProvisionRequest;
  return { id: r.id ?? clientId, attributes: r.attributes };
}

/** The key without its hash. */
export const keyView = ({ hash: _, ...rest }: ProvisioningKey): KeyView => rest;

/** Refusals logged at most once per key and code per minute. */
const LOG_EVERY_MS = 60_000;

/**
 * Provisioning keys and the provisioning of devices with them; the MQTT broker's
 * {@linkcode ProvisioningPort}.
 */
export class Provisioning implements ProvisioningPort {
  readonly #o: ProvisioningOptions;
  readonly #keys: DocStore<ProvisioningKey>;
  readonly #claims: DocStore<{ at: number }>;
  readonly #now: () => number;
  /** Per-key chains: quota changes of one key run one at a time on this node. */
  readonly #chains = new Map<string, Promise<unknown>>();
  readonly #logged = new Map<string, number>();

  private constructor(
    o: ProvisioningOptions,
    keys: DocStore<ProvisioningKey>,
    claims: DocStore<{ at: number }>,
  ) {
    this.#o = o;
    this.#keys = keys;
    this.#claims = claims;
    const clock = o.clock ?? { now: () => Date.now() };
    this.#now = () => clock.now();
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
    const L = PROVISIONING_LIMITS;
    const name = spec.name;
    if (typeof name !== "string" || name.length < 1 || name.length > 128) {
      throw new BadRequestError("name must be 1-128 characters", "bad_provisioning_key");
    }
    const quota = spec.quota ?? L.defaultQuota;
    if (!Number.isInteger(quota) || quota < 1 || quota > L.maxQuota) {
      throw new BadRequestError(
        `quota must be an integer from 1 to ${L.maxQuota}`,
        "bad_provisioning_key",
      );
    }
    const expiresAt = spec.expiresAt ?? now + L.defaultTtlMs;
    if (!Number.isFinite(expiresAt) || expiresAt <= now || expiresAt > now + L.maxTtlMs) {
      throw new BadRequestError(
        "expiresAt must be in the future and at most 365 days away",
        "bad_provisioning_key",
      );
    }
    const patterns = (list: string[] | undefined, what: string) => {
      const l = list ?? [];
      if (l.length > L.maxPatterns) {
        throw new BadRequestError(`${what} has more than ${L.maxPatterns} patterns`, "bad_pattern");
      }
      for (const p of l) {
        if (typeof p !== "string" || !PATTERN_RE.test(p)) {
          throw new BadRequestError(
            `${what}: "${String(p).slice(0, 140)}" must be a twin id or a glob with *`,
            "bad_pattern",
          );
        }
      }
      return [...l];
    };
    const t = spec.template ?? {};
    const template: ProvisioningTemplate = {};
    for (const k of ["type", "site", "profile"] as const) {
      const v = t[k];
      if (v === undefined) continue;
      if (typeof v !== "string" || v.length < 1 || v.length > 128) {
        throw new BadRequestError(`template.${k} must be 1-128 characters`, "bad_template");
      }
      template[k] = v;
    }
    if (t.attributes !== undefined) {
      template.attributes = checkAttributes(t.attributes, "template.attributes", "bad_template");
      for (const k of RESERVED) {
        if (k in template.attributes) {
          throw new BadRequestError(
            `template.attributes.${k}: set type, site and profile as template fields; provisionedBy and provisionedAt are set by the node`,
            "bad_template",
          );
        }
      }
    }
    const existing = await this.#keys.list();
    if (existing.length >= L.maxKeys) {
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
      allow: patterns(spec.allow, "allow"),
      deny: patterns(spec.deny, "deny"),
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
      this.#refused(keyIdOf(secret), err, { via: "mqtt", stage: "connect" });
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
      if (key.used >= key.quota) throw this.#exhausted(key);
      await this.#claim(id);
      claimed = id;
      if (!key.reprovision && (await this.#o.twins.get(id))) {
        throw new ProvisioningError(
          "twin_exists",
          409,
          `Twin "${id}" already exists; this key may not provision it again`,
        );
      }
      const now = this.#now();
      await this.#consume(key.id, now);
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
      if (consumed) await this.#release(keyId!).catch(() => {});
      if (err instanceof TwinmillError) {
        this.#refused(keyId, err, { ...where, ...(twin ? { twin } : {}) }, ctx.requestId);
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
      if (claimed) await this.#claims.delete(claimed).catch(() => {});
    }
  }

  #exhausted(key: ProvisioningKey): ProvisioningError {
    return new ProvisioningError(
      "provisioning_quota_exhausted",
      403,
      `Provisioning key "${key.id}" has provisioned its ${key.quota} devices`,
    );
  }

  /** Claim a new twin id for this request (create-only document; a stale one is taken over). */
  async #claim(id: string): Promise<void> {
    const now = this.#now();
    const busy = () =>
      new ProvisioningError(
        "provisioning_in_progress",
        409,
        `Twin "${id}" is being provisioned by another request; retry in a moment`,
      );
    const cur = await this.#claims.get(id);
    if (cur && cur.value.at + PROVISIONING_LIMITS.claimMs > now) throw busy();
    if (!(await this.#claims.put(id, { at: now }, cur ? cur.version : null))) throw busy();
  }

  /** Run `f` after every earlier change of key `id` on this node. */
  #serial<T>(id: string, f: () => Promise<T>): Promise<T> {
    const prev = this.#chains.get(id) ?? Promise.resolve();
    const run = prev.then(f, f);
    const tail = run.catch(() => {});
    this.#chains.set(id, tail);
    tail.then(() => {
      if (this.#chains.get(id) === tail) this.#chains.delete(id);
    });
    return run;
  }

  /** Take one device of the key's quota (compare-and-set; retried on a concurrent change). */
  #consume(id: string, now: number): Promise<void> {
    return this.#serial(id, async () => {
      for (let attempt = 0; attempt < 20; attempt++) {
        const d = await this.#keys.get(id);
        if (!d) throw invalidKey();
        if (d.value.used >= d.value.quota) throw this.#exhausted(d.value);
        const next = { ...d.value, used: d.value.used + 1, lastUsedAt: now };
        if (await this.#keys.put(id, next, d.version)) return;
      }
      throw new TwinmillError(
        "provisioning_busy",
        503,
        `Provisioning key "${id}" is changed by too many requests at once; retry`,
      );
    });
  }

  /** Give back one device of the quota (the provisioning failed after taking it). */
  #release(id: string): Promise<void> {
    return this.#serial(id, async () => {
      for (let attempt = 0; attempt < 20; attempt++) {
        const d = await this.#keys.get(id);
        if (!d || d.value.used === 0) return;
        if (await this.#keys.put(id, { ...d.value, used: d.value.used - 1 }, d.version)) return;
      }
    });
  }

  /** Audit a refusal; log it at most once per key and code per minute. */
  #refused(
    keyId: string | null,
    err: TwinmillError,
    detail: Record<string, string>,
    requestId?: string,
  ): void {
    this.#o.audit.record({
      actor: `provisioning-key:${keyId ?? "unknown"}`,
      action: "provision",
      target: detail.twin,
      result: err.status >= 500 ? "failed" : "denied",
      requestId,
      detail: { ...detail, code: err.code },
    });
    const k = `${keyId}\u0000${err.code}`;
    const now = this.#now();
    if ((this.#logged.get(k) ?? -Infinity) + LOG_EVERY_MS > now) return;
    if (this.#logged.size > 10_000) this.#logged.clear();
    this.#logged.set(k, now);
    this.#o.logger.warn("provisioning refused", {
      provisioner: keyId ?? "unknown",
      code: err.code,
      reason: err.message,
      ...detail,
    });
  }
}
