/**
 * Routing of twin operations to the owner of the twin's shard, from one table of operations:
 * the owner's server side and the routed client.
 * @module
 */
export { type RoutedMethod, type TwinOp, type TwinOps, twinOps } from "./ops.ts";
export { ClusterTwins, type ClusterTwinsOptions } from "./client.ts";
export { serveNode, serveShard } from "./serve.ts";
export { MAX_BATCH, MAX_BATCHES_IN_FLIGHT } from "./reads.ts";
export { type Failure, RoutedError } from "./wire.ts";
