/**
 * The size of a twin's state, for its size limit: bytes of JSON (UTF-8) of its attributes,
 * reported and desired state and the per-field timestamps that go with them (one per
 * top-level key, so many small keys count too). `delta` is left out: it is derived from
 * desired and never larger.
 * @module
 */
import type { TwinState } from "./twin.ts";

/** Default size limit of a twin's state (256 KiB). */
export const DEFAULT_TWIN_MAX_BYTES = 256 * 1024;

/** Sizes of the sections measured so far: state sections are never mutated, only replaced. */
const measured = new WeakMap<object, number>();

/** Bytes of `v` as JSON (UTF-8); Infinity when it cannot be serialized at all. */
function sectionBytes(v: object): number {
  let n = measured.get(v);
  if (n !== undefined) return n;
  try {
    n = utf8Length(JSON.stringify(v) ?? "");
  } catch {
    n = Infinity; // cannot be serialized (a cycle, too deep for this engine): never storable
  }
  measured.set(v, n);
  return n;
}

/** UTF-8 length of `s` without encoding it. */
function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 2; // a surrogate pair: 4 bytes for 2 code units
      i++;
    } else n += 2;
  }
  return n;
}

/** The measured size of a twin's state (see the module doc). */
export function twinSize(s: TwinState): number {
  return sectionBytes(s.attributes) + sectionBytes(s.reported) + sectionBytes(s.desired) +
    sectionBytes(s.metadata.reported) + sectionBytes(s.metadata.desired);
}

/**
 * Whether a change from `before` to `after` is refused by the size limit: it is when the new
 * state is over `limit` and larger than before (a change that shrinks an oversized twin, or
 * keeps its size, is taken). Returns the new size when refused, else null.
 */
export function overSizeLimit(
  before: TwinState,
  after: TwinState,
  limit: number,
): number | null {
  const size = twinSize(after);
  if (size <= limit) return null;
  return size > twinSize(before) ? size : null;
}
