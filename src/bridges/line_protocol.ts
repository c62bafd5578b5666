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
  if (ms > 0) return sub === 0 ? `${ms}000000` : `${ms}${String(sub).padStart(6, "0")}`;
  if (ms === 0) return String(sub);
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

/** True when `s` has no comma, equal sign, space, backslash, newline, CR or tab. */
function plain(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 44 || c === 61 || c === 32 || c === 92 || c === 10 || c === 13 || c === 9) {
      return false;
    }
  }
  return true;
}

/** A tag key, tag value or field key, escaped. */
function escapeKey(s: string): string {
  return plain(s) ? s : s.replace(KEY_RE, escapeChar);
}

/** Escaped measurements (few distinct ones, repeated on every point). */
const measurements = new Map<string, string>();
/** Escaped tag keys and field keys (likewise). */
const keyNames = new Map<string, string>();
/** Bound of each cache: beyond it, names are escaped each time (still correct). */
const MAX_NAMES = 10_000;

/** `s` escaped with `re`, from `cache` when seen before. */
function escapeName(s: string, cache: Map<string, string>, re: RegExp): string {
  let e = cache.get(s);
  if (e === undefined) {
    e = plain(s) ? s : s.replace(re, escapeChar);
    if (cache.size < MAX_NAMES) cache.set(s, e);
  }
  return e;
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
 * Per point this costs about what a template string of the same line does (see "InfluxDB
 * writer profile" in bench/README.md): names come from a cache, values are scanned once and
 * escaped only when they hold a special character.
 *
 * @example
 * ```ts
 * toLineProtocol({ measurement: "telemetry", tags: { device: "press 7" }, fields: { temp: 21 }, ts: 1 });
 * // => 'telemetry,device=press\\ 7 temp=21 1000000'
 * ```
 */
export function toLineProtocol(p: Point): string {
  if (!p.measurement) return "";
  const f = p.fields;
  let fields = "";
  for (const k of Object.keys(f)) {
    if (!k) continue;
    const v = f[k];
    let enc: string;
    if (typeof v === "number") {
      // Always a float (no `i` suffix): `3` and `3.5` land in the same float field.
      if (!Number.isFinite(v)) continue;
      enc = String(v);
    } else if (typeof v === "boolean") {
      enc = v ? "true" : "false";
    } else if (typeof v === "string") {
      enc = `"${v.replace(/["\\]/g, "\\$&")}"`;
    } else {
      continue;
    }
    fields += (fields === "" ? "" : ",") + escapeName(k, keyNames, KEY_RE) + "=" + enc;
  }
  if (fields === "") return "";
  let line = escapeName(p.measurement, measurements, MEASUREMENT_RE);
  const tags = p.tags;
  const keys = Object.keys(tags);
  // usually in order already (one producer, one shape): sort only when not
  for (let i = 1; i < keys.length; i++) {
    if (keys[i - 1] > keys[i]) {
      keys.sort();
      break;
    }
  }
  for (const k of keys) {
    const v = tags[k];
    if (!k || v === undefined || v === null || v === "") continue;
    line += "," + escapeName(k, keyNames, KEY_RE) + "=" + escapeKey(String(v));
  }
  line += " " + fields;
  if (Number.isFinite(p.ts)) line += " " + nanoTimestamp(p.ts, p.subMs);
  return line;
}
