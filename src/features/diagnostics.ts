/**
 * Device diagnostics (`GET /v1/twins/{id}/diagnostics`): the twin, what every node's
 * connectors know of the device's sessions (asked over the transport), and the InfluxDB
 * writer's backlog.
 * @module
 */
import { diagnosticsRoutes } from "../../routes/diagnostics.ts";
import { Diagnostics } from "../mgmt/diagnostics.ts";
import { sessionsOf } from "../modes/device_links.ts";
import type { FeatureContext, FeatureRoutes } from "./feature.ts";

/** The diagnostics routes of a node. */
export function diagnostics(
  { cfg, parts, twins }: FeatureContext,
  influx?: { buffered: number; lagMs(now?: number): number },
): FeatureRoutes {
  const diag = new Diagnostics({
    twins,
    sessions: (twin) => sessionsOf(parts.transport, cfg.nodeId, twin),
    influx,
  });
  return { routes: {}, twinRoutes: [diagnosticsRoutes(diag)] };
}
