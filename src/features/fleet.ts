/**
 * The fleet summary (`GET /v1/fleet`): every node answers on the transport with the counts of
 * the twins it owns (its host's fleet index); the route gathers them from every node of the
 * cluster (one on a single node) and sums them. Each mode has its host count the stored twins
 * it gains (a single node at start, a cluster node after taking shards); after that the counts
 * follow the twins' changes.
 * @module
 */
import { fleetRoutes } from "../../routes/fleet.ts";
import type { NodeFleet } from "../runtime/fleet_index.ts";
import { subjects } from "../transport/subjects.ts";
import type { FeatureContext, FeatureRoutes } from "./feature.ts";

/** How long the route waits for the other nodes (ms). */
const FLEET_WAIT_MS = 1_000;

/** The fleet route, and this node's answers to it; disposing stops answering. */
export function fleet({ cfg, parts }: FeatureContext): FeatureRoutes & Disposable {
  const { host, transport } = parts;
  const sub = transport.subscribe(subjects.fleet, (m) => {
    const q = m.data as { sites?: string[] } | null;
    m.respond(host.fleet.summary(cfg.nodeId, Date.now(), q?.sites));
  });
  const routes = fleetRoutes({
    async gather(sites) {
      const expected = await parts.nodes();
      let n = 0;
      const answers = await transport.gather(subjects.fleet, { sites }, {
        maxWaitMs: FLEET_WAIT_MS,
        until: () => ++n >= expected.length,
      }) as NodeFleet[];
      return { answers, expected };
    },
  });
  return {
    routes: { "/v1/fleet": routes },
    twinRoutes: [],
    [Symbol.dispose]: () => sub.unsubscribe(),
  };
}
