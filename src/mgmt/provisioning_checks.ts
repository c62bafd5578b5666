/**
 * Provisioning's pure checks: the shape of keys and key ids, id patterns, attributes, the
 * attributes a provisioned twin gets, a device's MQTT request, and a new key's fields.
 * @module
 */
import { createHash } from "node:crypto";
import { MAX_PAYLOAD_BYTES } from "../../actors/validate.ts";
import { attributeNameProblem } from "../../actors/attributes.ts";
import { readJson } from "../../actors/json_intake.ts";
import { BadRequestError } from "../errors.ts";
import {
  type AttributeValue,
  type KeySpec,
  type KeyView,
  PROVISIONING_LIMITS,
  type ProvisioningKey,
  type ProvisioningTemplate,
  type ProvisionRequest,
} from "./provisioning_types.ts";

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

/** SHA-256 of `s`, hex. */
export const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

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

/**
 * The name, quota, expiry and template of a new key, checked against
 * {@linkcode PROVISIONING_LIMITS} at `now`; throws a {@linkcode BadRequestError} naming the
 * first problem. The id patterns are checked by {@linkcode checkPatterns}.
 */
export function checkKeySpec(
  spec: KeySpec,
  now: number,
): Pick<ProvisioningKey, "name" | "quota" | "expiresAt" | "template"> {
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
  return { name, quota, expiresAt, template };
}

/** A copy of the allow or deny patterns `list` (`what`), each a twin id or a glob with `*`. */
export function checkPatterns(list: string[] | undefined, what: string): string[] {
  const L = PROVISIONING_LIMITS;
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
}
