/**
 * Conformance cases every {@linkcode ProfileStore} adapter must pass (memory, Deno KV,
 * JetStream KV).
 *
 * Each case asks its factory for a fresh {@linkcode ProfileFixture} — empty storage owned by
 * that case — and opens it one or more times. Opening again after disposing the previous
 * handle must see everything stored before (a new Deno KV handle on the same file, a new NATS
 * connection on the same bucket; for memory, the same store).
 *
 * @example
 * ```ts
 * import { profileStoreConformance } from "./profile_store_conformance.ts";
 * import { denoKvProfileStore } from "../../src/rules/deno_kv_profile_store.ts";
 *
 * profileStoreConformance("deno kv", async () => {
 *   const dir = await Deno.makeTempDir();
 *   return {
 *     open: async () => {
 *       const store = await denoKvProfileStore(`${dir}/profiles.kv`);
 *       return { store, [Symbol.asyncDispose]: () => store[Symbol.asyncDispose]() };
 *     },
 *     [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
 *   };
 * });
 * ```
 * @module
 */
import assert from "node:assert/strict";
import { MAX_PROFILE_BYTES, type Profile, ProfileSchema } from "../../actors/rules/mod.ts";
import type { ProfileStore, StoredProfile } from "../../src/rules/service.ts";

/** An open handle on the storage; disposing it closes the handle, not the storage. */
export interface OpenedProfileStore extends AsyncDisposable {
  store: ProfileStore;
}

/** Storage for one case: every `open()` opens a handle on the same data. */
export interface ProfileFixture extends AsyncDisposable {
  open(): Promise<OpenedProfileStore>;
}

/** Creates fresh, empty storage for one case. */
export type ProfileFixtureFactory = () => Promise<ProfileFixture>;

const T0 = 1_700_000_000_000;

/** A one-rule profile (defaults filled in, as the service stores it). */
function profile(value: number, description?: string): Profile {
  return ProfileSchema.parse({
    ...(description === undefined ? {} : { description }),
    rules: [{ id: "overheat", kind: "threshold", field: "temp", op: ">", value }],
  });
}

const stored = (name: string, value = 80, updatedAt = T0): StoredProfile => ({
  name,
  profile: profile(value),
  updatedAt,
});

/**
 * A profile whose input JSON is just under the 64 KiB profile limit, with text outside
 * Latin-1 (V8 then keeps strings as UTF-16, two bytes a character): stored, with defaults
 * filled in, it is larger than one Deno KV value may be.
 */
function largeProfile(): Profile {
  const rules = Array.from({ length: 50 }, (_, i) => ({
    id: `r${i}`,
    kind: "expression",
    expr: `temp > ${i} && site == "${"é€😀".repeat(60)}${"x".repeat(480)}"`,
    actions: [{ type: "webhook", url: `https://hooks.example.com/${"p".repeat(100)}/${i}` }],
  }));
  const input = { description: "Ünïcödé ✓ ".repeat(100), rules };
  const bytes = new TextEncoder().encode(JSON.stringify(input)).byteLength;
  assert.ok(bytes > 60_000 && bytes <= MAX_PROFILE_BYTES, `input is ${bytes} bytes`);
  return ProfileSchema.parse(input);
}

/** Names whose order differs from any escaped form, and `.` where KV keys forbid it. */
const NAMES = ["b", "a", "a.b", "a-b", "a_b", "A", "0", ".lead", "trail.", "a..b", ".", "Z9"];

const names = (ps: StoredProfile[]) => ps.map((p) => p.name);

/** Register the profile store cases for an adapter. */
export function profileStoreConformance(name: string, factory: ProfileFixtureFactory): void {
  Deno.test(`${name}: an empty store has no profiles`, async () => {
    await using fx = await factory();
    await using h = await fx.open();
    assert.deepEqual(await h.store.all(), []);
    assert.equal(await h.store.get("press"), null);
    assert.equal(await h.store.delete("press"), false);
  });

  Deno.test(`${name}: put then get returns the profile as stored`, async () => {
    await using fx = await factory();
    await using h = await fx.open();
    const p: StoredProfile = {
      name: "press",
      profile: profile(80, "Presses of line 3"),
      updatedAt: T0 + 123,
    };
    await h.store.put(p);
    assert.deepEqual(await h.store.get("press"), p);
    assert.equal(await h.store.get("pres"), null);
    assert.equal(await h.store.get("press2"), null);
    // what get returns is the caller's: changing it does not change the store
    const got = (await h.store.get("press"))!;
    got.profile.rules.length = 0;
    assert.deepEqual(await h.store.get("press"), p);
  });

  Deno.test(`${name}: put again overwrites`, async () => {
    await using fx = await factory();
    await using h = await fx.open();
    await h.store.put(stored("press", 80, T0));
    await h.store.put(stored("oven", 200, T0));
    await h.store.put(stored("press", 90, T0 + 5));
    assert.deepEqual(await h.store.get("press"), stored("press", 90, T0 + 5));
    assert.deepEqual(await h.store.all(), [stored("oven", 200, T0), stored("press", 90, T0 + 5)]);
  });

  Deno.test(`${name}: all() lists every profile in name order (names with . _ -)`, async () => {
    await using fx = await factory();
    await using h = await fx.open();
    const shuffled = NAMES.map((n, i) => stored(n, i));
    for (const p of shuffled) await h.store.put(p);
    const all = await h.store.all();
    assert.deepEqual(names(all), [...NAMES].sort());
    for (const p of shuffled) {
      assert.deepEqual(all.find((x) => x.name === p.name), p);
      assert.deepEqual(await h.store.get(p.name), p);
    }
  });

  Deno.test(`${name}: delete is true for a stored profile, false otherwise`, async () => {
    await using fx = await factory();
    await using h = await fx.open();
    await h.store.put(stored("press"));
    await h.store.put(stored("a..b"));
    assert.equal(await h.store.delete("press"), true);
    assert.equal(await h.store.delete("press"), false);
    assert.equal(await h.store.delete("never"), false);
    assert.equal(await h.store.get("press"), null);
    assert.deepEqual(names(await h.store.all()), ["a..b"]);
    // a deleted name can be used again
    await h.store.put(stored("press", 70, T0 + 1));
    assert.deepEqual(await h.store.get("press"), stored("press", 70, T0 + 1));
    assert.equal(await h.store.delete("a..b"), true);
    assert.deepEqual(names(await h.store.all()), ["press"]);
  });

  Deno.test(`${name}: a profile at the size limit, with non-Latin-1 text, round-trips and shrinks`, async () => {
    await using fx = await factory();
    await using h = await fx.open();
    const big: StoredProfile = { name: "big.one", profile: largeProfile(), updatedAt: T0 };
    await h.store.put(big);
    assert.deepEqual(await h.store.get("big.one"), big);
    assert.deepEqual(await h.store.all(), [big]);
    // replaced by a small one, and back: no leftovers of the larger value show
    await h.store.put(stored("big.one", 1));
    assert.deepEqual(await h.store.get("big.one"), stored("big.one", 1));
    await h.store.put(big);
    assert.deepEqual(await h.store.get("big.one"), big);
    assert.equal(await h.store.delete("big.one"), true);
    assert.equal(await h.store.get("big.one"), null);
    assert.deepEqual(await h.store.all(), []);
  });

  Deno.test(`${name}: profiles survive reopening the store`, async () => {
    await using fx = await factory();
    const big: StoredProfile = { name: "big", profile: largeProfile(), updatedAt: T0 };
    {
      await using h = await fx.open();
      for (const n of ["press", "oven", "line.3", "gone"]) await h.store.put(stored(n));
      await h.store.put(stored("press", 95, T0 + 9));
      await h.store.put(big);
      assert.equal(await h.store.delete("gone"), true);
    }
    await using h = await fx.open();
    assert.deepEqual(await h.store.all(), [
      big,
      stored("line.3"),
      stored("oven"),
      stored("press", 95, T0 + 9),
    ]);
    assert.equal(await h.store.get("gone"), null);
    assert.equal(await h.store.delete("oven"), true);
  });
}
