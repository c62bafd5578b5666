/**
 * InfluxDB line protocol encoding of one point, with a nanosecond timestamp: milliseconds
 * since the epoch plus a sub-millisecond part (see {@linkcode Point.subMs}).
 * @module
 */

/** One time-series point, as written to InfluxDB. */
export interface Point {
  /** Measurement name, e.g. `telemetry`. */
  measurement: string;
  /** Tag set; empty values are omitted. */
  tags: Record<string, string>;
  /** Field set; non-finite numbers are dropped. */
  fields: Record<string, number | boolean | string>;
  /** Timestamp in milliseconds since the epoch. */
  ts: number;
  /**
   * Nanoseconds within the millisecond `ts`, 0–999,999 (default 0). The node sets it from the
   * message's durable sequence for arrival times (`pointSubMs` in `actors/twin.ts`), so two
   * messages of one device in the same millisecond are two points, and a replay rewrites the
   * same point.
   */
  subMs?: number;
}

/** Nanoseconds per millisecond: the range of {@linkcode Point.subMs}. */
const NS_PER_MS = 1_000_000;

/** `ts` (ms) and `subMs` (ns) as an integer count of nanoseconds, in decimal. */
export function nanoTimestamp(ts: number, subMs = 0): string {
  const ms = Math.trunc(ts);
  const sub = Number.isInteger(subMs) && subMs > 0 && subMs < NS_PER_MS ? subMs : 0;
  if (ms >= 0) return ms === 0 ? String(sub) : `${ms}${String(sub).padStart(6, "0")}`;
  return (BigInt(ms) * 1_000_000n + BigInt(sub)).toString();
}

// A backslash is doubled when it precedes a special character, another backslash or the end:
// otherwise it would escape what follows it (e.g. the separator) and break the line. Parsers
// differ here: VictoriaMetrics reads `\\` as one backslash (exact round trip); InfluxDB 1.x
// keeps both, and cannot parse a tag value ending in a backslash at all (such a point is
// refused and counted by the writer). Names without backslashes are exact everywhere.
const MEASUREMENT_RE = /\\(?=[, \n\r\t\\]|$)|[, \n\r\t]/g;
const KEY_RE = /\\(?=[,= \n\r\t\\]|$)|[,= \n\r\t]/g;
const CONTROL: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };
const escapeChar = (c: string) => CONTROL[c] ?? `\\${c}`;

/** Escapes a measurement, tag key, tag value or field key (`re` picks the special set). */
function escapeName(s: string, re: RegExp): string {
  return s.replace(re, escapeChar);
}

function fieldValue(v: number | boolean | string): string | undefined {
  switch (typeof v) {
    case "number":
      // Always a float (no `i` suffix): `3` and `3.5` land in the same float field.
      return Number.isFinite(v) ? String(v) : undefined;
    case "boolean":
      return v ? "true" : "false";
    case "string":
      return `"${v.replace(/["\\]/g, "\\$&")}"`;
    default:
      return undefined;
  }
}

/**
 * Encodes `p` as one line of InfluxDB line protocol with a nanosecond timestamp (write it with
 * precision `ns`).
 *
 * Tags are sorted by key (InfluxDB's preferred order) and empty tag keys or values are
 * omitted; numbers are always written as floats, non-finite numbers are dropped, strings are
 * quoted. Returns `""` when no field is left (or the measurement is empty): such a point
 * cannot be written and the caller skips it.
 *
 * @example
 * ```ts
 * toLineProtocol({ measurement: "telemetry", tags: { device: "press 7" }, fields: { temp: 21 }, ts: 1 });
 * // => 'telemetry,device=press\\ 7 temp=21 1000000'
 * ```
 */
export function toLineProtocol(p: Point): string {
  if (!p.measurement) return "";
  const fields: string[] = [];
  for (const [k, v] of Object.entries(p.fields)) {
    if (!k) continue;
    const enc = fieldValue(v);
    if (enc !== undefined) fields.push(`${escapeName(k, KEY_RE)}=${enc}`);
  }
  if (fields.length === 0) return "";
  let line = escapeName(p.measurement, MEASUREMENT_RE);
  for (const k of Object.keys(p.tags).sort()) {
    const v = p.tags[k];
    if (!k || v === undefined || v === null || v === "") continue;
    line += `,${escapeName(k, KEY_RE)}=${escapeName(String(v), KEY_RE)}`;
  }
  line += ` ${fields.join(",")}`;
  if (Number.isFinite(p.ts)) line += ` ${nanoTimestamp(p.ts, p.subMs)}`;
  return line;
}
