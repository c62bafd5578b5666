/**
 * A short, stable fingerprint of a JSON value, used to notice which rules changed when a
 * profile is reloaded (a rule whose definition changed restarts its state).
 * @module
 */

/** JSON text of `v` with object keys sorted, so equal values always give equal text. */
export function stableStringify(v: unknown): string {
  if (v === null || typeof v !== "object") return JSON.stringify(v) ?? "null";
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(",")}]`;
  const o = v as Record<string, unknown>;
  const parts: string[] = [];
  for (const k of Object.keys(o).sort()) {
    if (o[k] !== undefined) parts.push(`${JSON.stringify(k)}:${stableStringify(o[k])}`);
  }
  return `{${parts.join(",")}}`;
}

/** FNV-1a (32 bit) of a string's UTF-16 code units, as 8 hex digits. */
export function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, "0");
}

/** Fingerprint of a JSON value, independent of key order. */
export function fingerprint(v: unknown): string {
  return fnv1a(stableStringify(v));
}
