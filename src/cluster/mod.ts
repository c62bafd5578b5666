/**
 * Cluster mode over NATS/JetStream.
 * @module
 */
export { type ClusterParts, startCluster } from "./cluster_mode.ts";
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
  H_TOPIC,
  INBOUND_STREAM,
  JetStreamIngest,
  messageId,
} from "./inbound.ts";
export { KvLeases, type KvLeasesOptions, KvMembership, type NodeInfo } from "./kv_leases.ts";
export { ClusterTwins, type ClusterTwinsOptions, serveShard } from "./router.ts";
export { AckRegistry, ShardConsumer, type ShardConsumerOptions } from "./shard_consumer.ts";
