/**
 * Pure JSON helpers: RFC 7396 merge patch, deep equality, and the desired/reported delta.
 * @module
 */

/** A JSON object. */
export type JsonObject = Record<string, unknown>;

/** True for a plain JSON object (not null, not an array). */
export function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Apply a JSON merge patch (RFC 7396) to `target`, returning a new object. `null` deletes. */
export function mergePatch(target: JsonObject, patch: JsonObject): JsonObject {
  const out: JsonObject = { ...target };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else if (isObject(v)) out[k] = mergePatch(isObject(out[k]) ? out[k] as JsonObject : {}, v);
    else out[k] = v;
  }
  return out;
}

/** Structural equality of JSON values. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => deepEqual(x, bb[i]));
  }
  const ka = Object.keys(a as JsonObject);
  const kb = Object.keys(b as JsonObject);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => deepEqual((a as JsonObject)[k], (b as JsonObject)[k]));
}

/**
 * The desired keys whose value differs from reported. Nested objects are compared key by key,
 * so only the differing leaves appear (as device-shadow users expect).
 */
export function computeDelta(desired: JsonObject, reported: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [k, d] of Object.entries(desired)) {
    const r = reported[k];
    if (isObject(d) && isObject(r)) {
      const sub = computeDelta(d, r);
      if (Object.keys(sub).length > 0) out[k] = sub;
    } else if (!deepEqual(d, r)) {
      out[k] = d;
    }
  }
  return out;
}
