import { persistenceConformance } from "../../tests/conformance/persistence_conformance.ts";
import { denoKvPersistence } from "./deno_kv.ts";

persistenceConformance("deno kv", {
  async open() {
    const dir = await Deno.makeTempDir({ prefix: "twinmill-kv-" });
    const path = `${dir}/state.kv`;
    return { p: await denoKvPersistence(path), reopen: () => denoKvPersistence(path) };
  },
});
