import { connect } from "@nats-io/transport-node";
import { profileStoreConformance } from "../../tests/conformance/profile_store_conformance.ts";
import { startNats } from "../../tests/harness/mod.ts";
import { type JetStreamProfileOptions, jetstreamProfileStore } from "./jetstream_profile_store.ts";

/** A connection and a store on it; disposing drains the connection. */
async function openStore(url: string, opts?: JetStreamProfileOptions) {
  const nc = await connect({ servers: url });
  try {
    const store = await jetstreamProfileStore(nc, opts);
    return { store, [Symbol.asyncDispose]: () => nc.drain() };
  } catch (err) {
    await nc.close();
    throw err;
  }
}

// "Reopen" is a new connection and a new store on the same bucket of the same server.
profileStoreConformance("jetstream profile store", async () => {
  const nats = await startNats({ jetstream: true });
  return {
    open: () => openStore(nats.url),
    [Symbol.asyncDispose]: () => nats[Symbol.asyncDispose](),
  };
});
