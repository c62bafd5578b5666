import { connect } from "@nats-io/transport-node";
import { docStoreConformance } from "../../tests/conformance/doc_store_conformance.ts";
import { startNats } from "../../tests/harness/mod.ts";
import { denoKvDocStores, jetstreamDocStores, memoryDocStores } from "./doc_store.ts";

docStoreConformance("memory doc store", () => Promise.resolve(memoryDocStores()));

docStoreConformance("deno kv doc store", async () => {
  const dir = await Deno.makeTempDir();
  const s = await denoKvDocStores(`${dir}/docs.kv`);
  return Object.assign(s, { cleanup: () => Deno.remove(dir, { recursive: true }) });
});

docStoreConformance("jetstream doc store", async () => {
  const nats = await startNats({ jetstream: true });
  const nc = await connect({ servers: nats.url });
  const s = jetstreamDocStores(nc);
  return Object.assign(s, {
    cleanup: async () => {
      await nc.drain();
      await nats[Symbol.asyncDispose]();
    },
  });
});
