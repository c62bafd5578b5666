/**
 * What the Sparkplug host counts and says: its Prometheus counters (on the node's registry),
 * refused messages counted by reason, logged at most once per device per minute and kept
 * (the last few per device, for diagnostics) in bounded maps.
 * @module
 */
import client from "prom-client";
import type { Logger } from "../../obs/log.ts";
import type { Metrics } from "../../obs/metrics.ts";
import type { Rejection } from "../../ports/connector.ts";
import type { SparkplugReason } from "./port.ts";

/** Rejections kept per device, devices with rejections kept, log keys kept. */
const KEEP_REJECTIONS = 10;
const MAX_REJECTING_DEVICES = 10_000;
const MAX_LOG_KEYS = 10_000;

/** The Sparkplug counters, registered on `registry` (once per node). */
export function sparkplugMetrics(registry: Metrics["registry"]) {
  const registers = [registry];
  return {
    messages: new client.Counter({
      name: "twinmill_sparkplug_messages_total",
      help: "Sparkplug B messages from edge nodes, by message type (NBIRTH, NDATA, ...)",
      labelNames: ["type"] as const,
      registers,
    }),
    rejected: new client.Counter({
      name: "twinmill_sparkplug_messages_rejected_total",
      help: "Sparkplug B messages refused (nothing applied), by reason",
      labelNames: ["reason"] as const,
      registers,
    }),
    ignored: new client.Counter({
      name: "twinmill_sparkplug_messages_ignored_total",
      help: "Sparkplug B messages ignored: resends (duplicate seq), deaths of an earlier session",
      labelNames: ["reason"] as const,
      registers,
    }),
    metricsSkipped: new client.Counter({
      name: "twinmill_sparkplug_metrics_skipped_total",
      help:
        "Metrics left out of accepted messages (unknown alias, null, historical, not telemetry)",
      registers,
    }),
    rebirths: new client.Counter({
      name: "twinmill_sparkplug_rebirth_requests_total",
      help: "Rebirth requests (NCMD Node Control/Rebirth) sent, by cause",
      labelNames: ["cause"] as const,
      registers,
    }),
    writes: new client.Counter({
      name: "twinmill_sparkplug_metric_writes_total",
      help: "Metrics written to edge nodes and devices in NCMD/DCMD, by source (desired, command)",
      labelNames: ["source"] as const,
      registers,
    }),
  };
}

/** The host's counters. */
export type SparkplugMetrics = ReturnType<typeof sparkplugMetrics>;

/** Refusals: counted, logged once per device and kind per minute, the last few kept. */
export class SparkplugNotices {
  readonly #rejected = new Map<string, Rejection[]>();
  readonly #logged = new Map<string, number>();

  constructor(
    readonly log: Logger,
    readonly metrics: SparkplugMetrics,
    readonly now: () => number = Date.now,
  ) {}

  /** True at most once per minute per key (the caller logs then). Bounded in keys. */
  oncePerMinute(key: string): boolean {
    const now = this.now();
    if ((this.#logged.get(key) ?? -Infinity) + 60_000 > now) return false;
    if (this.#logged.size >= MAX_LOG_KEYS) this.#logged.clear();
    this.#logged.set(key, now);
    return true;
  }

  /** A refused message of `device` on `topic`. */
  reject(device: string, topic: string, reason: SparkplugReason): void {
    this.metrics.rejected.inc({ reason });
    let ring = this.#rejected.get(device);
    if (ring) this.#rejected.delete(device);
    else if (this.#rejected.size >= MAX_REJECTING_DEVICES) {
      this.#rejected.delete(this.#rejected.keys().next().value!);
    }
    this.#rejected.set(device, ring ??= []);
    ring.push({ at: this.now(), reason, topic: topic.slice(0, 200) });
    if (ring.length > KEEP_REJECTIONS) ring.shift();
    if (this.oncePerMinute(`${device}\u0000${reason}`)) {
      this.log.warn("Sparkplug message rejected", {
        device: device.slice(0, 128),
        topic: topic.slice(0, 200),
        reason,
      });
    }
  }

  /** The device's recent rejections, newest last (a copy). */
  of(device: string): Rejection[] {
    return [...(this.#rejected.get(device) ?? [])];
  }
}
