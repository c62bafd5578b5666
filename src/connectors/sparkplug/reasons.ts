/**
 * What each Sparkplug reject reason means, in words an engineer can act on (diagnostics).
 * @module
 */
import type { SparkplugReason } from "./port.ts";

/** One sentence per Sparkplug-only reject reason (the others are the MQTT ones). */
const EXPLANATIONS: Readonly<Partial<Record<SparkplugReason, string>>> = {
  malformed: "the Sparkplug payload is not a valid Sparkplug B protobuf Payload",
  compressed: "the Sparkplug payload is compressed (uuid SPBV1.0_COMPRESSED); send it uncompressed",
  too_many_metrics: "the Sparkplug message has more metrics than TWINMILL_SPARKPLUG_MAX_METRICS " +
    "(default 1,000), or its birth would pass the host's 1,000,000 birth metrics",
  too_many_edge_nodes: "the host follows TWINMILL_SPARKPLUG_MAX_EDGE_NODES edge nodes, all born",
  too_many_devices: "the edge node has TWINMILL_SPARKPLUG_MAX_DEVICES devices, all born",
  no_birth: "data of an edge node or device the host has not seen born (NBIRTH/DBIRTH); a " +
    "rebirth was requested",
  unknown_alias: "no metric of the message was declared by its birth (unknown aliases or " +
    "names); a rebirth was requested",
  bad_metric: "the message's metrics do not make a valid twin message (e.g. a string over " +
    "TWINMILL_JSON_MAX_STRING)",
};

/** The explanation of a Sparkplug-only reject reason, if `reason` is one. */
export function explainSparkplugRejection(reason: string): string | undefined {
  return (EXPLANATIONS as Record<string, string>)[reason];
}
