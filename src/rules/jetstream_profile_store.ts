/**
 * Profiles in a JetStream KV bucket (cluster mode; every node opens the same bucket): one key
 * per profile, the value is the stored profile's JSON.
 *
 * Keys: a profile name may contain `.` anywhere, but `.` separates KV key tokens, and a key
 * may not start or end with one nor hold two in a row (`.lead`, `trail.`, `a..b` are valid
 * names). So names go through the twin key escape of `src/persistence/jetstream_kv.ts`: `.`
 * becomes `=2E` (`line.3` → `line=2E3`), names without `.` are keys as they are.
 *
 * Listing does not use `kv.keys()` (an ordered consumer that can hang on nats-server 2.9) but
 * {@linkcode liveEntries}: one stream-info request for the keys, then one read per key.
 * Reads go through the stream leader (`allow_direct: false`): a profile written via one node
 * is read back via any other.
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { JetStreamApiError, jetstreamManager } from "@nats-io/jetstream";
import { twinKey } from "../persistence/jetstream_kv.ts";
import { liveEntries, openBucket } from "../persistence/kv_bucket.ts";
import type { ProfileStore, StoredProfile } from "./service.ts";

/** Options of {@linkcode jetstreamProfileStore}. */
export interface JetStreamProfileOptions {
  /** Replicas of the bucket when it is created: 1, 3 or 5 (default 1). */
  replicas?: number;
  /** KV bucket name (default `tm_profiles`). */
  bucket?: string;
}

/** "wrong last sequence": the key changed since it was read. */
const WRONG_LAST_SEQUENCE = 10071;

/**
 * Open (creating it if missing) the profile bucket on `nc`. The store does not own the
 * connection: disposing the store does nothing; drain or close the connection when done.
 *
 * @example
 * ```ts
 * import { connect } from "@nats-io/transport-node";
 *
 * const nc = await connect({ servers: "nats://127.0.0.1:4222" });
 * const store = await jetstreamProfileStore(nc, { replicas: 3 });
 * await store.put({ name: "press", profile: { rules: [] }, updatedAt: Date.now() });
 * await nc.drain();
 * ```
 */
export async function jetstreamProfileStore(
  nc: NatsConnection,
  opts: JetStreamProfileOptions = {},
): Promise<ProfileStore> {
  const bucket = opts.bucket ?? "tm_profiles";
  const kv = await openBucket(nc, bucket, {
    replicas: opts.replicas ?? 1,
    history: 1,
    allow_direct: false,
  });
  const jsm = await jetstreamManager(nc);

  return {
    async all() {
      const entries = await liveEntries(jsm, kv, bucket);
      const out = [...entries.values()].map((e) => e.json<StoredProfile>());
      return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    },
    async get(name) {
      const e = await kv.get(twinKey(name));
      return e?.operation === "PUT" ? e.json<StoredProfile>() : null;
    },
    async put(p) {
      await kv.put(twinKey(p.name), JSON.stringify(p));
    },
    async delete(name) {
      const key = twinKey(name);
      for (let attempt = 1;; attempt++) {
        const e = await kv.get(key);
        if (e?.operation !== "PUT") return false;
        try {
          // only if nobody changed it since: then exactly one of two deleters sees `true`
          await kv.delete(key, { previousSeq: e.revision });
          return true;
        } catch (err) {
          const raced = err instanceof JetStreamApiError && err.code === WRONG_LAST_SEQUENCE;
          if (!raced || attempt === 10) throw err;
        }
      }
    },
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}
