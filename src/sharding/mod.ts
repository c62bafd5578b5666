/**
 * Shards: the twin→shard hash, placement over nodes, the handoff state machine.
 * @module
 */
export { shardOf } from "./shard.ts";
export { assignment, owners, weight } from "./placement.ts";
export {
  describeState,
  type HandOffReason,
  type HandOffStep,
  holdsLease,
  initialShardState,
  isServing,
  type ShardAction,
  type ShardMessage,
  type ShardMessageType,
  type ShardState,
  type ShardStateKind,
  type ShardTransitionCode,
  ShardTransitionError,
  transition,
  type TransitionResult,
} from "./handoff.ts";
