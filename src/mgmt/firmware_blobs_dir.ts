/**
 * Firmware image bytes in a directory under the data dir (single node).
 * @module
 */
import { rename } from "node:fs/promises";
import { join } from "node:path";
import { type BlobInfo, type BlobStore, BlobTruncatedError, checkKey } from "./firmware_blobs.ts";

/** Read `n` bytes at most per file read. */
const READ_SIZE = 64 * 1024;

/**
 * Blobs as files in `dir` (created if missing). A blob is written to `{key}.part`, synced, then
 * renamed, so a crash never leaves a complete-looking file; `list` shows `.part` files too
 * (a sweep removes the old ones).
 */
export async function directoryBlobStore(dir: string): Promise<BlobStore> {
  await Deno.mkdir(dir, { recursive: true });
  return {
    async put(key, data) {
      checkKey(key);
      const part = join(dir, `${key}.part`);
      const f = await Deno.open(part, { write: true, createNew: true });
      let size = 0;
      try {
        for await (const chunk of data) {
          for (let off = 0; off < chunk.length;) off += await f.write(chunk.subarray(off));
          size += chunk.length;
        }
        await f.syncData();
      } catch (err) {
        f.close();
        await Deno.remove(part).catch(() => {});
        throw err;
      }
      f.close();
      await rename(part, join(dir, key));
      return size;
    },
    async read(key, start, end) {
      checkKey(key);
      let f: Deno.FsFile;
      try {
        f = await Deno.open(join(dir, key), { read: true });
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) return null;
        throw err;
      }
      await f.seek(start, Deno.SeekMode.Start);
      let at = start;
      let open = true;
      const close = () => {
        if (open) f.close();
        open = false;
      };
      return new ReadableStream<Uint8Array>({
        async pull(c) {
          try {
            const buf = new Uint8Array(Math.min(READ_SIZE, end + 1 - at));
            const n = await f.read(buf);
            if (n === null) throw new BlobTruncatedError(key, at);
            at += n;
            c.enqueue(n === buf.length ? buf : buf.subarray(0, n));
            if (at > end) {
              close();
              c.close();
            }
          } catch (err) {
            close();
            c.error(err);
          }
        },
        cancel: close,
      }, { highWaterMark: 0 });
    },
    async delete(key) {
      checkKey(key);
      try {
        await Deno.remove(join(dir, key));
        return true;
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) return false;
        throw err;
      }
    },
    async list() {
      const out: BlobInfo[] = [];
      for await (const e of Deno.readDir(dir)) {
        if (!e.isFile || out.length >= 100_000) continue;
        const st = await Deno.stat(join(dir, e.name)).catch(() => null);
        if (st) out.push({ key: e.name, size: st.size, mtime: st.mtime?.getTime() ?? 0 });
      }
      return out;
    },
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}
