/**
 * MQTT 5 user properties of a device message: name/value pairs a device (or the plant's
 * broker) sets on a PUBLISH. They travel with the message through the durable log, appear on
 * the twin's event for it, and become InfluxDB tags of its telemetry point where the twin's
 * profile lists their names. Bounded before anything else is done with them: a message over
 * a limit is refused as a whole (`bad_property`; an MQTT 5 client gets PUBACK `0x99` with a
 * reason string), never cut short silently.
 * @module
 */

/** The pairs in the order sent; a name may repeat (MQTT 5 allows it). */
export type UserProperties = ReadonlyArray<readonly [name: string, value: string]>;

/** Most user properties (pairs) on one message. */
export const MAX_USER_PROPERTIES = 16;
/** Longest property name (UTF-8 bytes); a name has at least one byte. */
export const MAX_PROPERTY_NAME_BYTES = 64;
/** Longest property value (UTF-8 bytes). */
export const MAX_PROPERTY_VALUE_BYTES = 256;

/** UTF-8 length of `s`, or `limit + 1` as soon as it is over `limit`. */
function utf8Bytes(s: string, limit: number): number {
  if (s.length > limit) return limit + 1; // at least one byte per UTF-16 unit
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c < 0xdc00 ? (i++, 4) : 3;
  }
  return n;
}

/** True when one pair is within the limits (`__proto__` is no name: events are plain objects). */
export function validProperty(name: unknown, value: unknown): boolean {
  if (typeof name !== "string" || typeof value !== "string") return false;
  const nb = utf8Bytes(name, MAX_PROPERTY_NAME_BYTES);
  return nb >= 1 && nb <= MAX_PROPERTY_NAME_BYTES && name !== "__proto__" &&
    utf8Bytes(value, MAX_PROPERTY_VALUE_BYTES) <= MAX_PROPERTY_VALUE_BYTES;
}

/**
 * The user properties of a PUBLISH as MQTT.js and aedes (mqtt-packet) give them — an object of
 * name to value, or to an array of values for a repeated name — checked against the limits:
 * undefined when there are none, `"bad_property"` when any limit is passed (more than
 * {@linkcode MAX_USER_PROPERTIES} pairs, an empty or long name, a long value).
 */
export function readUserProperties(raw: unknown): UserProperties | undefined | "bad_property" {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== "object" || Array.isArray(raw)) return "bad_property";
  const out: Array<readonly [string, string]> = [];
  for (const name in raw) {
    if (!Object.hasOwn(raw, name)) continue;
    const v = (raw as Record<string, unknown>)[name];
    const values = Array.isArray(v) ? v : [v];
    if (out.length + values.length > MAX_USER_PROPERTIES) return "bad_property";
    for (const value of values) {
      if (!validProperty(name, value)) return "bad_property";
      out.push([name, value as string]);
    }
  }
  return out.length === 0 ? undefined : out;
}

/** True when `props` (read back from a log) keeps within the limits. */
export function withinLimits(props: UserProperties): boolean {
  if (props.length === 0 || props.length > MAX_USER_PROPERTIES) return false;
  for (const [n, v] of props) if (!validProperty(n, v)) return false;
  return true;
}

/**
 * The properties as an event shows them: `{"line": "L3"}`; a repeated name has the array of
 * its values in order (as MQTT.js gives them).
 */
export function propertiesObject(props: UserProperties): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [n, v] of props) {
    const had = out[n];
    out[n] = had === undefined ? v : Array.isArray(had) ? [...had, v] : [had, v];
  }
  return out;
}

/** True when `v` can be a tag value: not empty, not ending in a backslash (InfluxDB 1.x cannot parse it). */
const taggable = (v: string): boolean => v !== "" && !v.endsWith("\\");

/**
 * `tags` plus a tag for each name in `names` the message has a property of (its first value
 * that can be a tag: not empty, not ending in a backslash, which would make InfluxDB 1.x refuse
 * the point). A tag the twin already has (`device`, its `type`/`site`/`line` attributes) is
 * kept. Returns `tags` itself when nothing is added.
 */
export function withPropertyTags(
  tags: Record<string, string>,
  props: UserProperties | undefined,
  names: readonly string[],
): Record<string, string> {
  if (!props || names.length === 0) return tags;
  let out = tags;
  for (const name of names) {
    if (Object.hasOwn(out, name)) continue;
    const p = props.find(([n, v]) => n === name && taggable(v));
    if (!p) continue;
    if (out === tags) out = { ...tags };
    out[name] = p[1];
  }
  return out;
}
