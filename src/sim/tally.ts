/**
 * What the simulator counts while it runs: messages sent and acknowledged by kind, latencies,
 * connections and faults — shared by every device, read by the progress line and the summary.
 * @module
 */
import { Histogram } from "./stats.ts";

/** What a device publishes. `malformed` goes to the telemetry topic and is dropped by the node. */
export type MessageKind = "telemetry" | "reported" | "status" | "malformed";

/** Counters of one run. */
export class Tally {
  sent = 0;
  /** PUBACKs received (QoS 1). */
  acked = 0;
  /** Publishes that ended in an error. */
  failed = 0;
  readonly byKind: Record<MessageKind, number> = {
    telemetry: 0,
    reported: 0,
    status: 0,
    malformed: 0,
  };
  /** Connections dropped without DISCONNECT, so the broker published the device's will. */
  wills = 0;
  /** Connections made again after a drop (a fault's or an unexpected one). */
  reconnects = 0;
  /** Connections lost that the simulator did not drop itself. */
  unexpected = 0;
  /** Messages the scheduler could not place (every device busy or down, or too far behind). */
  skipped = 0;
  readonly faults = { overheat: 0, stuck: 0, dropout: 0, storms: 0, stormDevices: 0 };
  /** Publish → PUBACK latency over the whole run (ms). */
  readonly latency = new Histogram();
  /** The same over the current progress window. */
  readonly window = new Histogram();
}
