/**
 * The wait most cluster tests start with: the nodes have settled and each one serves shards.
 * @module
 */
import { getJson, type HasHttp } from "./client.ts";
import { waitFor } from "./wait_for.ts";

/** A node of `GET /v1/cluster` and the shards it serves. */
export interface ClusterMember {
  id: string;
  shards: number[];
}

const WORDS = ["no", "one", "two", "three", "four", "five"];

/**
 * Waits (up to 30 s) until `node`'s `GET /v1/cluster` says settled, with `count` nodes, each
 * serving at least one shard; returns those nodes.
 */
export async function sharedBy(node: HasHttp, count: number): Promise<ClusterMember[]> {
  const nodes = await waitFor(async () => {
    const c = (await getJson(`${node.httpUrl}/v1/cluster`)).body;
    const ok = c.settled && c.nodes.length === count &&
      c.nodes.every((n: ClusterMember) => n.shards.length > 0);
    return ok ? c.nodes as ClusterMember[] : undefined;
  }, { timeoutMs: 30_000, message: `${WORDS[count] ?? count} nodes share the shards` });
  return nodes!;
}
