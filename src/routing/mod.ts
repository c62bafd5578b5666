/**
 * Routing of twin operations to the owner of the twin's shard, from one table of operations
 * (`ops.ts`): the owner's server side (`serve.ts`) and the routed client (`client.ts`).
 * @module
 */
export { type RoutedMethod, type TwinOp, type TwinOps, twinOps } from "./ops.ts";
export { ClusterTwins, type ClusterTwinsOptions } from "./client.ts";
export { serveNode, serveShard } from "./serve.ts";
export { RoutedError } from "./wire.ts";
