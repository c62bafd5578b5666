/**
 * The HTTP side of serving and storing firmware images: one byte range (RFC 9110), devices'
 * `Authorization: Basic`, the content type to record, and a body stream that counts its bytes.
 * @module
 */
import { TwinmillError } from "../src/errors.ts";

/** A byte range of `size` bytes: `{start, end}` (inclusive), unsatisfiable, or null (send all). */
export type RangeAnswer = { start: number; end: number } | "unsatisfiable" | null;

/**
 * Parse a `Range` header (RFC 9110) for a representation of `size` bytes. One range only:
 * several ranges, another unit or a malformed header is ignored (the whole image is sent).
 */
export function parseRange(header: string | undefined, size: number): RangeAnswer {
  const m = /^bytes=(\d{0,16})-(\d{0,16})$/.exec((header ?? "").trim());
  if (!m || (m[1] === "" && m[2] === "")) return null;
  if (m[1] === "") {
    const n = Number(m[2]);
    return n === 0 ? "unsatisfiable" : { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const last = m[2] === "" ? Infinity : Number(m[2]);
  if (last < start) return null;
  if (start >= size) return "unsatisfiable";
  return { start, end: Math.min(last, size - 1) };
}

/** `Authorization: Basic` as user and password; undefined when absent, null when malformed. */
export function parseBasic(
  h: string | undefined,
): { user: string; pass: string } | null | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(h ?? "");
  if (!m) return /^Basic\s/i.test(h ?? "") ? null : undefined;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(
      Uint8Array.from(atob(m[1]), (ch) => ch.charCodeAt(0)),
    );
  } catch {
    return null;
  }
  const i = text.indexOf(":");
  return i < 0 ? null : { user: text.slice(0, i), pass: text.slice(i + 1) };
}

/** The range starts past the end of the image (416). */
export class RangeNotSatisfiableError extends TwinmillError {
  override name = "RangeNotSatisfiableError";
  constructor(size: number) {
    super(
      "range_not_satisfiable",
      416,
      `The range starts past the end of the image (${size} bytes)`,
    );
  }
}

/** The content type to record: a plausible media type other than the generic one. */
export function contentTypeOf(h: string | undefined): string | undefined {
  const t = h?.split(";")[0].trim().toLowerCase();
  if (
    !t || t === "application/octet-stream" || t === "application/x-www-form-urlencoded" ||
    t.startsWith("multipart/") || !/^[a-z0-9.+-]+\/[a-z0-9.+-]{1,100}$/.test(t)
  ) {
    return undefined; // generic, or what curl --data-binary sends unless told
  }
  return t;
}

/** `src`, counting bytes, calling `onEnd` once when it ends, fails or is cancelled. */
export function tracked(
  src: ReadableStream<Uint8Array>,
  onBytes: (n: number) => void,
  onEnd: () => void,
): ReadableStream<Uint8Array> {
  const reader = src.getReader();
  let ended = false;
  const end = () => {
    if (!ended) onEnd();
    ended = true;
  };
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      try {
        const r = await reader.read();
        if (r.done) {
          end();
          c.close();
          return;
        }
        onBytes(r.value.length);
        c.enqueue(r.value);
      } catch (err) {
        end();
        c.error(err);
      }
    },
    async cancel(reason) {
      end();
      await reader.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
}
