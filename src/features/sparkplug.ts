/**
 * The Sparkplug B host application as this node's connector (`TWINMILL_SPARKPLUG=on`, the
 * default): the embedded broker and the bridge hand it the `spBv1.0/…` messages they get;
 * it follows the edge nodes, updates their twins and writes desired state and commands back
 * as NCMD/DCMD. Its counters go on the node's registry.
 * @module
 */
import { SparkplugHost } from "../connectors/sparkplug/host.ts";
import { sparkplugMetrics } from "../connectors/sparkplug/notices.ts";
import type { FeatureContext } from "./feature.ts";

/** The node's Sparkplug host, unless `TWINMILL_SPARKPLUG=off`. */
export function sparkplugHost(
  { cfg, log, metrics, parts }: FeatureContext,
): SparkplugHost | undefined {
  const sp = cfg.sparkplug;
  if (!sp) return undefined;
  return new SparkplugHost({
    hostId: sp.hostId,
    ingest: parts.ingest,
    logger: log.child("sparkplug"),
    metrics: sparkplugMetrics(metrics.registry),
    // a birth's values are one telemetry message: it must pass the JSON intake's key limit
    maxMetrics: Math.min(sp.maxMetrics, cfg.limits.json.maxKeys),
    limits: { maxEdgeNodes: sp.maxEdgeNodes, maxDevices: sp.maxDevices },
    jsonLimits: cfg.limits.json,
  });
}
