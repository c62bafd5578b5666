import { profileStoreConformance } from "../../tests/conformance/profile_store_conformance.ts";
import { memoryProfileStore } from "./memory_profile_store.ts";

profileStoreConformance("memory profile store", () => {
  // In memory, "reopen" is the same store: disposing a handle keeps it.
  const store = memoryProfileStore();
  return Promise.resolve({
    open: () => Promise.resolve({ store, [Symbol.asyncDispose]: () => Promise.resolve() }),
    [Symbol.asyncDispose]: () => store[Symbol.asyncDispose](),
  });
});
