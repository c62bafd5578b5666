/**
 * The pure part of remote configuration: validating a config template, matching its selector
 * against twin attributes, the desired patch it applies, and whether a twin reports it as
 * applied, pending or failed. No I/O.
 * @module
 */
import { deepEqual, isObject, type JsonObject } from "../../actors/json.ts";
import type { TwinState } from "../../actors/twin.ts";
import { attributeNameProblem } from "../../actors/attributes.ts";
import { BadRequestError, TwinmillError } from "../errors.ts";

/** Config names: 1–64 of `A-Z a-z 0-9 _ - .`. */
const CONFIG_NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;
/** Largest desired fragment, as JSON. */
export const MAX_FRAGMENT_BYTES = 64 * 1024;
/** Deepest nesting of a desired fragment. */
const MAX_FRAGMENT_DEPTH = 32;
/** Most attributes a selector may name. */
const MAX_SELECTOR_KEYS = 16;
/** Longest selector attribute name and value (attribute names are at most 128). */
const MAX_SELECTOR_KEY = 128;
const MAX_SELECTOR_VALUE = 1024;

/**
 * The key under which a config's version travels in `desired`, and under which the device
 * reports its outcome in `reported`: `{"configStatus": {"<name>": {"version": 2}}}` desired,
 * `{"configStatus": {"<name>": {"version": 2, "state": "applied"|"failed", "error": "..."}}}`
 * reported. Fragments may not use it.
 */
export const STATUS_KEY = "configStatus";

/** A stored config template. Times in ms since the epoch. */
export interface ConfigTemplate {
  name: string;
  /** Twins whose attributes equal every one of these (as strings). */
  selector: Record<string, string>;
  /** The fragment merged (JSON merge patch) into the desired state of every selected twin. */
  desired: JsonObject;
  /** 1 on creation, +1 on every PUT that changes the selector or the fragment. */
  version: number;
  createdAt: number;
  updatedAt: number;
}

/** What a client sends. */
export interface ConfigInput {
  selector: Record<string, string>;
  desired: JsonObject;
}

/** The body of a config is not valid (400 `config_invalid`), naming the field. */
export class ConfigInvalidError extends BadRequestError {
  override name = "ConfigInvalidError";
  constructor(message: string) {
    super(message, "config_invalid");
  }
}

/** The fragment is over {@linkcode MAX_FRAGMENT_BYTES} (413 `config_too_large`). */
export class ConfigTooLargeError extends TwinmillError {
  override name = "ConfigTooLargeError";
  constructor(bytes: number) {
    super(
      "config_too_large",
      413,
      `desired: the fragment is ${bytes} bytes as JSON, over the limit of ${MAX_FRAGMENT_BYTES}`,
    );
  }
}

/** Throws `bad_config_name` unless `name` is 1–64 of `A-Z a-z 0-9 _ - .`. */
export function checkConfigName(name: string): void {
  if (!CONFIG_NAME_RE.test(name)) {
    throw new BadRequestError(
      `Invalid config name "${name.slice(0, 80)}": use 1-64 of A-Z a-z 0-9 _ - .`,
      "bad_config_name",
    );
  }
}

function depthOf(v: unknown, depth = 0): number {
  if (depth > MAX_FRAGMENT_DEPTH || v === null || typeof v !== "object") return depth;
  let max = depth;
  for (const x of Object.values(v)) max = Math.max(max, depthOf(x, depth + 1));
  return max;
}

/**
 * Validate a config body, naming the first bad field (`selector.site: must be a string`).
 *
 * @example
 * ```ts
 * parseConfig({ selector: { type: "press" }, desired: { sampleRate: 5 } });
 * ```
 */
export function parseConfig(body: unknown): ConfigInput {
  if (!isObject(body)) throw new ConfigInvalidError("the body must be a JSON object");
  for (const k of Object.keys(body)) {
    if (k !== "selector" && k !== "desired") {
      throw new ConfigInvalidError(`${k.slice(0, 80)}: unknown field (use selector and desired)`);
    }
  }
  const { selector, desired } = body;
  if (!isObject(selector)) {
    throw new ConfigInvalidError("selector: must be an object of attribute: value");
  }
  const keys = Object.keys(selector);
  if (keys.length === 0) {
    throw new ConfigInvalidError("selector: name at least one attribute (e.g. type or site)");
  }
  if (keys.length > MAX_SELECTOR_KEYS) {
    throw new ConfigInvalidError(`selector: at most ${MAX_SELECTOR_KEYS} attributes`);
  }
  for (const [k, v] of Object.entries(selector)) {
    if (k.length > MAX_SELECTOR_KEY) {
      throw new ConfigInvalidError(`selector: attribute names are at most ${MAX_SELECTOR_KEY}`);
    }
    const problem = attributeNameProblem(k);
    if (problem) throw new ConfigInvalidError(`selector: ${problem}`);
    if (typeof v !== "string") {
      throw new ConfigInvalidError(`selector.${k}: must be a string (attributes match as text)`);
    }
    if (v.length > MAX_SELECTOR_VALUE) {
      throw new ConfigInvalidError(`selector.${k}: at most ${MAX_SELECTOR_VALUE} characters`);
    }
  }
  if (!isObject(desired)) throw new ConfigInvalidError("desired: must be a JSON object");
  if (Object.keys(desired).length === 0) {
    throw new ConfigInvalidError("desired: must set at least one key");
  }
  if (STATUS_KEY in desired) {
    throw new ConfigInvalidError(`desired.${STATUS_KEY}: reserved for config versions`);
  }
  const bytes = new TextEncoder().encode(JSON.stringify(desired)).length;
  if (bytes > MAX_FRAGMENT_BYTES) throw new ConfigTooLargeError(bytes);
  if (depthOf(desired) > MAX_FRAGMENT_DEPTH) {
    throw new ConfigInvalidError(`desired: nested deeper than ${MAX_FRAGMENT_DEPTH} levels`);
  }
  return { selector: selector as Record<string, string>, desired };
}

/** True if every selector attribute is present in `attributes` with that value (as text). */
export function selects(selector: Record<string, string>, attributes: JsonObject): boolean {
  return Object.entries(selector).every(([k, v]) =>
    attributes[k] !== undefined && attributes[k] !== null && String(attributes[k]) === v
  );
}

/** The merge patch a config applies to desired: its fragment plus its version marker. */
export function desiredPatch(c: ConfigTemplate): JsonObject {
  return { ...c.desired, [STATUS_KEY]: { [c.name]: { version: c.version } } };
}

/**
 * True if `reported` holds `fragment`: every key equal (objects compared key by key, so
 * `reported` may hold more), and every `null` key absent.
 */
export function includes(fragment: JsonObject, reported: JsonObject): boolean {
  return Object.entries(fragment).every(([k, want]) => {
    const have = reported[k];
    if (want === null) return have === undefined;
    if (isObject(want)) return isObject(have) && includes(want, have);
    return deepEqual(want, have);
  });
}

/** Where a twin stands with a config. */
export type TwinConfigState =
  | { state: "applied" }
  | { state: "pending" }
  | { state: "failed"; error: string };

/**
 * `failed` if the device reported `configStatus.{name}` with `state: "failed"` for the
 * config's current version; else `applied` if `reported` holds the fragment; else `pending`.
 */
export function configStateOf(c: ConfigTemplate, twin: TwinState): TwinConfigState {
  const all = twin.reported[STATUS_KEY];
  const mine = isObject(all) ? all[c.name] : undefined;
  if (isObject(mine) && mine.state === "failed" && mine.version === c.version) {
    const error = typeof mine.error === "string" ? mine.error.slice(0, 500) : "failed";
    return { state: "failed", error };
  }
  return includes(c.desired, twin.reported) ? { state: "applied" } : { state: "pending" };
}
