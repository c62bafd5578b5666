/**
 * The persistence port and its adapters (memory, Deno KV, JetStream KV), and the JetStream KV
 * bucket helpers the cluster's stores share.
 * @module
 */
export { type InboundLog, type LogEntry, type Persistence, type SnapshotStore } from "./port.ts";
export { memoryPersistence } from "./memory.ts";
export { denoKvPersistence } from "./deno_kv.ts";
export {
  type JetStreamSnapshotOptions,
  type JetStreamSnapshotStore,
  jetstreamSnapshotStore,
  MAX_SNAPSHOT_BYTES,
  type SnapshotFencing,
  SnapshotTooLargeError,
  twinIdOfKey,
  twinKey,
} from "./jetstream_kv.ts";
export { bucketKeys, liveEntries, openBucket } from "./kv_bucket.ts";
