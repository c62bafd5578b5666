/**
 * The one JSON intake for everything the outside world sends: HTTP bodies and MQTT payloads.
 * It bounds nesting depth, keys per object, string length and array length, refuses numbers
 * JavaScript cannot hold (`1e400` parses to Infinity, which JSON would store as `null` — a
 * merge patch's "delete") and the `__proto__` key (assigning it changes an object's prototype
 * instead of adding data). Every check is iterative: a 10,000-deep `[[[[…` is refused before
 * `JSON.parse` builds it, and never reaches recursive code (merge patch, delta, stringify,
 * persistence).
 * @module
 */

/** Bounds of accepted JSON. See the README's Security section. */
export interface JsonLimits {
  /** Deepest nesting of objects and arrays; the top-level value is level 1. */
  maxDepth: number;
  /** Most keys in one object. */
  maxKeys: number;
  /** Longest string, keys included (UTF-16 code units: characters, for most text). */
  maxString: number;
  /** Most elements in one array. */
  maxArray: number;
}

/** Defaults: far above what devices and applications send, far below what hurts a node. */
export const DEFAULT_JSON_LIMITS: Readonly<JsonLimits> = Object.freeze({
  maxDepth: 32,
  maxKeys: 1_000,
  maxString: 64 * 1024,
  maxArray: 10_000,
});

/** Why JSON was refused: a stable code (HTTP error code and MQTT reject reason alike). */
export type JsonViolationCode =
  | "not_json"
  | "payload_too_deep"
  | "too_many_keys"
  | "string_too_long"
  | "array_too_long"
  | "bad_number"
  | "bad_key";

/** A refusal: its code, a sentence naming the limit, and where in the value (`$.a[3].b`). */
export interface JsonViolation {
  code: JsonViolationCode;
  message: string;
  /** JSONPath-like location of the offending value (`$` for the top level). */
  path: string;
}

/** The outcome of {@linkcode readJson}. */
export type JsonIntake =
  | { ok: true; value: unknown }
  | { ok: false; violation: JsonViolation };

/**
 * Parse `text` as JSON within `limits`. Never throws: a refusal names the violated limit.
 *
 * @example
 * ```ts
 * const r = readJson('{"n":1e400}', DEFAULT_JSON_LIMITS);
 * // r.ok === false, r.violation.code === "bad_number"
 * ```
 */
export function readJson(text: string, limits: JsonLimits = DEFAULT_JSON_LIMITS): JsonIntake {
  const tooDeep = scanDepth(text, limits.maxDepth);
  if (tooDeep) return { ok: false, violation: tooDeep };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return { ok: false, violation: { code: "not_json", message: `Not JSON: ${why}`, path: "$" } };
  }
  const v = checkJson(value, limits);
  return v ? { ok: false, violation: v } : { ok: true, value };
}

/**
 * Check an already parsed value against `limits` (iteratively: any depth is safe). Returns the
 * first violation, or null when the value is within them.
 */
export function checkJson(
  value: unknown,
  limits: JsonLimits = DEFAULT_JSON_LIMITS,
): JsonViolation | null {
  if (!isContainer(value)) return checkLeaf(value, limits, null, "");
  const stack: Frame[] = [{ value, depth: 1, parent: null, key: "" }];
  while (stack.length > 0) {
    const f = stack.pop()!;
    if (f.depth > limits.maxDepth) {
      return violation(
        "payload_too_deep",
        `JSON is nested deeper than ${limits.maxDepth} levels (TWINMILL_JSON_MAX_DEPTH)`,
        f,
      );
    }
    if (Array.isArray(f.value)) {
      if (f.value.length > limits.maxArray) {
        return violation(
          "array_too_long",
          `An array has ${f.value.length} elements, more than ${limits.maxArray} ` +
            `(TWINMILL_JSON_MAX_ARRAY)`,
          f,
        );
      }
      for (let i = 0; i < f.value.length; i++) {
        const x = f.value[i];
        if (isContainer(x)) stack.push({ value: x, depth: f.depth + 1, parent: f, key: i });
        else {
          const bad = checkLeaf(x, limits, f, i);
          if (bad) return bad;
        }
      }
      continue;
    }
    const keys = Object.keys(f.value);
    if (keys.length > limits.maxKeys) {
      return violation(
        "too_many_keys",
        `An object has ${keys.length} keys, more than ${limits.maxKeys} (TWINMILL_JSON_MAX_KEYS)`,
        f,
      );
    }
    for (const k of keys) {
      if (k === "__proto__") {
        return violation("bad_key", 'The key "__proto__" is not accepted', f, k);
      }
      if (k.length > limits.maxString) {
        return violation(
          "string_too_long",
          `A key is ${k.length} characters long, more than ${limits.maxString} ` +
            `(TWINMILL_JSON_MAX_STRING)`,
          f,
        );
      }
      const x = (f.value as Record<string, unknown>)[k];
      if (isContainer(x)) stack.push({ value: x, depth: f.depth + 1, parent: f, key: k });
      else {
        const bad = checkLeaf(x, limits, f, k);
        if (bad) return bad;
      }
    }
  }
  return null;
}

/** An object or array being checked, with the way back to the root (for the path). */
interface Frame {
  value: object;
  depth: number;
  parent: Frame | null;
  key: string | number;
}

function isContainer(v: unknown): v is object {
  return v !== null && typeof v === "object";
}

function checkLeaf(
  v: unknown,
  limits: JsonLimits,
  parent: Frame | null,
  key: string | number,
): JsonViolation | null {
  if (typeof v === "number" && !Number.isFinite(v)) {
    return violation(
      "bad_number",
      "A number is out of range (JSON numbers must be finite, e.g. not 1e400)",
      parent,
      key,
    );
  }
  if (typeof v === "string" && v.length > limits.maxString) {
    return violation(
      "string_too_long",
      `A string is ${v.length} characters long, more than ${limits.maxString} ` +
        `(TWINMILL_JSON_MAX_STRING)`,
      parent,
      key,
    );
  }
  return null;
}

function violation(
  code: JsonViolationCode,
  message: string,
  at: Frame | null,
  key?: string | number,
): JsonViolation {
  const path = pathOf(at, key);
  return { code, message: `${message} at ${path}`, path };
}

/** `$.a[3].b` for a frame (and a key within it); long paths keep their first steps. */
function pathOf(at: Frame | null, key?: string | number): string {
  const steps: Array<string | number> = key === undefined || at === null ? [] : [key];
  for (let f = at; f && f.parent; f = f.parent) steps.push(f.key);
  steps.reverse();
  let out = "$";
  for (const s of steps.slice(0, 40)) {
    out += typeof s === "number"
      ? `[${s}]`
      : /^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(s)
      ? `.${s}`
      : `[${JSON.stringify(s.length > 64 ? s.slice(0, 64) + "…" : s)}]`;
  }
  return steps.length > 40 ? `${out}…` : out;
}

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Refuse text whose brackets nest deeper than `maxDepth`, before it is parsed: JSON.parse
 * would build the whole structure first. One pass, string-aware, no recursion; malformed text
 * is left to JSON.parse to name.
 */
function scanDepth(text: string, maxDepth: number): JsonViolation | null {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      // skip the string: to the next quote not escaped
      for (i++; i < text.length; i++) {
        const s = text.charCodeAt(i);
        if (s === BACKSLASH) i++;
        else if (s === QUOTE) break;
      }
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > maxDepth) {
        return {
          code: "payload_too_deep",
          message: `JSON is nested deeper than ${maxDepth} levels (TWINMILL_JSON_MAX_DEPTH)`,
          path: "$",
        };
      }
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return null;
}
