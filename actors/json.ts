/**
 * Pure JSON helpers: RFC 7396 merge patch, deep equality, and the desired/reported delta.
 * Keys are data whatever their name: `__proto__` is read and written as an own property,
 * never as the object's prototype (the JSON intake refuses it anyway).
 * @module
 */

/** A JSON object. */
export type JsonObject = Record<string, unknown>;

/**
 * The empty JSON object every empty part of a twin shares (frozen: parts are replaced, never
 * changed in place), so that a million twins do not hold four million empty objects.
 */
export const EMPTY_OBJECT: JsonObject = Object.freeze({});

/** True for a plain JSON object (not null, not an array). */
export function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** The own property `k` of `o` (never one inherited from its prototype). */
function own(o: JsonObject, k: string): unknown {
  return Object.hasOwn(o, k) ? o[k] : undefined;
}

/** Set the own property `k` of `o` as data (`__proto__` included). */
function put(o: JsonObject, k: string, v: unknown): void {
  if (k === "__proto__") {
    Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
  } else {
    o[k] = v;
  }
}

/**
 * Apply a JSON merge patch (RFC 7396) to `target`, returning a new object. `null` deletes;
 * objects merge key by key; anything else (arrays included) replaces.
 */
export function mergePatch(target: JsonObject, patch: JsonObject): JsonObject {
  const out: JsonObject = { ...target };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else if (isObject(v)) {
      const t = own(out, k);
      put(out, k, mergePatch(isObject(t) ? t : {}, v));
    } else put(out, k, v);
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
  return ka.every((k) =>
    Object.hasOwn(b as JsonObject, k) && deepEqual((a as JsonObject)[k], (b as JsonObject)[k])
  );
}

/**
 * The desired keys whose value differs from reported. Nested objects are compared key by key,
 * so only the differing leaves appear (as device-shadow users expect).
 */
export function computeDelta(desired: JsonObject, reported: JsonObject): JsonObject {
  let out: JsonObject | undefined;
  for (const [k, d] of Object.entries(desired)) {
    const r = own(reported, k);
    if (isObject(d) && isObject(r)) {
      const sub = computeDelta(d, r);
      if (sub !== EMPTY_OBJECT) put(out ??= {}, k, sub);
    } else if (!deepEqual(d, r)) {
      put(out ??= {}, k, d);
    }
  }
  return out ?? EMPTY_OBJECT;
}
