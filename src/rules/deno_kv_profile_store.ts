/**
 * Profiles in Deno KV (single node): key `["profiles", name]`, value the stored profile's
 * JSON text.
 *
 * A Deno KV value holds at most 64 KiB, and a profile near its own 64 KiB limit grows past
 * that once defaults are filled in. So a long JSON text is split: the head
 * `["profiles", name]` then holds `{parts: n}` and the text sits in
 * `["profile_parts", name, 0..n-1]`, written and deleted in one atomic operation with the head.
 * A read fetches the head and every possible part in one `getMany` (one snapshot), so it
 * never mixes two versions.
 * @module
 */
import type { ProfileStore, StoredProfile } from "./service.ts";

/** Characters per part: 60 KB even when V8 stores the string as UTF-16. */
const PART_CHARS = 30_000;
/** Parts read with the head in one `getMany` (which takes at most 10 keys). */
const MAX_PARTS = 9;

type Head = string | { parts: number };

const head = (name: string): Deno.KvKey => ["profiles", name];
const part = (name: string, i: number): Deno.KvKey => ["profile_parts", name, i];

/** Split `s` into parts of at most {@linkcode PART_CHARS}, never inside a surrogate pair. */
function split(s: string): string[] {
  const out: string[] = [];
  for (let o = 0; o < s.length;) {
    let end = Math.min(o + PART_CHARS, s.length);
    const c = s.charCodeAt(end - 1);
    if (end < s.length && c >= 0xd800 && c <= 0xdbff) end--;
    out.push(s.slice(o, end));
    o = end;
  }
  return out;
}

const partsOf = (h: Head | null) => (h !== null && typeof h === "object" ? h.parts : 0);

/**
 * Open (creating it if missing) the Deno KV database at `path` and keep profiles in it.
 * Disposing the store closes the database.
 *
 * @example
 * ```ts
 * await using store = await denoKvProfileStore("data/profiles.kv");
 * await store.put({ name: "press", profile: { rules: [] }, updatedAt: Date.now() });
 * ```
 */
export async function denoKvProfileStore(path: string): Promise<ProfileStore> {
  const kv = await Deno.openKv(path);

  /** The profile, its head and parts read in one snapshot. */
  async function get(name: string): Promise<StoredProfile | null> {
    const keys = [head(name), ...Array.from({ length: MAX_PARTS }, (_, i) => part(name, i))];
    const [{ value: h }, ...parts] = await kv.getMany<Head[]>(keys);
    if (h === null) return null;
    if (typeof h === "string") return JSON.parse(h);
    const texts = parts.slice(0, h.parts).map((p) => p.value);
    if (h.parts > MAX_PARTS || texts.some((t) => typeof t !== "string")) {
      throw new Error(`Cannot read profile "${name}": its stored parts are incomplete`);
    }
    return JSON.parse(texts.join(""));
  }

  /** Run `ops` against the current head, retrying while another writer gets in between. */
  async function change(
    name: string,
    ops: (a: Deno.AtomicOperation, old: Head | null) => void,
  ): Promise<Head | null> {
    for (let attempt = 1;; attempt++) {
      const old = await kv.get<Head>(head(name));
      const a = kv.atomic().check(old);
      ops(a, old.value);
      if ((await a.commit()).ok) return old.value;
      if (attempt === 10) throw new Error(`Cannot change profile "${name}": too many conflicts`);
    }
  }

  return {
    async all() {
      const out: StoredProfile[] = [];
      for await (const e of kv.list<Head>({ prefix: ["profiles"] })) {
        const name = e.key[1] as string;
        if (typeof e.value === "string") out.push(JSON.parse(e.value));
        else {
          const p = await get(name); // reads head and parts together
          if (p) out.push(p);
        }
      }
      return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    },
    get,
    async put(p) {
      const texts = split(JSON.stringify(p));
      if (texts.length > MAX_PARTS) {
        throw new Error(
          `Cannot store profile "${p.name}": its JSON is over ${MAX_PARTS * PART_CHARS} characters`,
        );
      }
      await change(p.name, (a, old) => {
        if (texts.length === 1) a.set(head(p.name), texts[0]);
        else {
          a.set(head(p.name), { parts: texts.length });
          texts.forEach((t, i) => a.set(part(p.name, i), t));
        }
        const stale = texts.length === 1 ? 0 : texts.length;
        for (let i = stale; i < partsOf(old); i++) a.delete(part(p.name, i));
      });
    },
    async delete(name) {
      const old = await change(name, (a, old) => {
        if (old === null) return;
        a.delete(head(name));
        for (let i = 0; i < partsOf(old); i++) a.delete(part(name, i));
      });
      return old !== null;
    },
    [Symbol.asyncDispose]: () => Promise.resolve(kv.close()),
  };
}
