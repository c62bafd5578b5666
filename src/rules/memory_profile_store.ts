/**
 * Profiles in memory (tests, and nodes that need no durability). Values are copied in and
 * out, so callers cannot change what is stored by mutating what they passed or got.
 * @module
 */
import type { ProfileStore, StoredProfile } from "./service.ts";

/**
 * A profile store in memory; disposing it does nothing.
 *
 * @example
 * ```ts
 * const store = memoryProfileStore();
 * await store.put({ name: "press", profile: { rules: [] }, updatedAt: Date.now() });
 * (await store.all()).map((p) => p.name); // ["press"]
 * ```
 */
export function memoryProfileStore(): ProfileStore {
  const profiles = new Map<string, StoredProfile>();
  return {
    all: () =>
      Promise.resolve(
        [...profiles.keys()].sort().map((name) => structuredClone(profiles.get(name)!)),
      ),
    get: (name) => {
      const p = profiles.get(name);
      return Promise.resolve(p === undefined ? null : structuredClone(p));
    },
    put: (p) => {
      profiles.set(p.name, structuredClone(p));
      return Promise.resolve();
    },
    delete: (name) => Promise.resolve(profiles.delete(name)),
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}
