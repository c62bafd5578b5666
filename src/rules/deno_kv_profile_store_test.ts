import { profileStoreConformance } from "../../tests/conformance/profile_store_conformance.ts";
import { denoKvProfileStore } from "./deno_kv_profile_store.ts";

// "Reopen" is a new Deno KV handle on the same file.
profileStoreConformance("deno kv profile store", async () => {
  const dir = await Deno.makeTempDir({ prefix: "twinmill-profiles-" });
  return {
    async open() {
      const store = await denoKvProfileStore(`${dir}/profiles.kv`);
      return { store, [Symbol.asyncDispose]: () => store[Symbol.asyncDispose]() };
    },
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
});
