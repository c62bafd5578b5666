import {
  persistenceConformance,
  persistenceHandle,
} from "../../tests/conformance/persistence_conformance.ts";
import { denoKvPersistence } from "./deno_kv.ts";

persistenceConformance("deno kv", async () => {
  const dir = await Deno.makeTempDir({ prefix: "twinmill-kv-" });
  return {
    open: async () => persistenceHandle(await denoKvPersistence(`${dir}/state.kv`)),
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
});
