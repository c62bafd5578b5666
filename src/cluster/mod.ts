/**
 * Cluster mode over NATS/JetStream.
 * @module
 */
export {
  Coordinator,
  type CoordinatorOptions,
  type Lease,
  type LeasePort,
  type MembershipPort,
  type ShardRuntime,
  type ShardStateName,
} from "./coordinator.ts";
export {
  ensureInboundStream,
  H_AT,
  H_BATCH,
  H_TOPIC,
  INBOUND_STREAM,
  JetStreamIngest,
} from "./inbound.ts";
export {
  type BatchEntry,
  decodeBatch,
  encodeBatch,
  entrySeq,
  MAX_BATCH_BYTES,
  MAX_BATCH_ENTRIES,
  SEQ_STRIDE,
  streamSeqOf,
} from "./batch.ts";
export { KvLeases, type KvLeasesOptions, KvMembership, type NodeInfo } from "./kv_leases.ts";
export {
  AckRegistry,
  recordEntries,
  ShardConsumer,
  type ShardConsumerOptions,
} from "./shard_consumer.ts";
