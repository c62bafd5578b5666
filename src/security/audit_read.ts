/**
 * Reading the audit log's files: open if present, stream lines, check the last byte, and keep
 * the newest entries of a query.
 * @module
 */
import type { AuditEntry } from "./audit_entry.ts";

/** Open for reading; null when it does not exist. */
export async function openIfExists(path: string): Promise<Deno.FsFile | null> {
  try {
    return await Deno.open(path, { read: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/** The lines of an open file, read from its start to its current end. */
export async function* lines(file: Deno.FsFile): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  const buf = new Uint8Array(64 * 1024);
  let rest = "";
  for (let n = await file.read(buf); n !== null; n = await file.read(buf)) {
    const parts = (rest + decoder.decode(buf.subarray(0, n), { stream: true })).split("\n");
    rest = parts.pop()!;
    yield* parts;
  }
  rest += decoder.decode();
  if (rest !== "") yield rest;
}

/** True when the file at `path` (of `size` bytes, at least one) ends with a newline. */
export async function endsWithNewline(path: string, size: number): Promise<boolean> {
  using file = await Deno.open(path, { read: true });
  await file.seek(size - 1, Deno.SeekMode.Start);
  const b = new Uint8Array(1);
  return (await file.read(b)) === 1 && b[0] === 10;
}

/** The `limit` newest entries seen, ties broken by file position (later is newer). */
export class Newest {
  #items: Array<{ e: AuditEntry; seq: number }> = [];
  #seq = 0;
  constructor(readonly limit: number) {}
  add(e: AuditEntry) {
    this.#items.push({ e, seq: this.#seq++ });
    if (this.#items.length >= 2 * this.limit + 64) this.#trim();
  }
  #trim() {
    this.#items.sort((a, b) => b.e.ts - a.e.ts || b.seq - a.seq);
    this.#items.length = Math.min(this.#items.length, this.limit);
  }
  result(): AuditEntry[] {
    this.#trim();
    return this.#items.map((x) => x.e);
  }
}
