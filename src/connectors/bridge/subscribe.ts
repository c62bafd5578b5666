/**
 * The bridge's subscriptions on the plant's broker: the twin topics at QoS 1, shared as
 * `$share/{group}/…` in a cluster so that the nodes split the devices, and the Sparkplug B
 * filters (never shared: one node takes a plant's Sparkplug traffic, in seq order per edge).
 * @module
 */
import type { MqttClient } from "mqtt";
import type { Logger } from "../../obs/log.ts";
import { TWIN_FILTERS } from "./intake.ts";

/** What {@linkcode subscribeTwins} subscribes with. */
export interface SubscribeOptions {
  /** Shared subscription group, if any. */
  share?: string;
  /** More filters, never shared (Sparkplug B). */
  extra: readonly string[];
  /** The link's MQTT version (5: retained messages only for a new subscription). */
  version: 4 | 5;
  log: Logger;
  /** Logged with each line: the link (URL without credentials, client id). */
  where: Record<string, unknown>;
}

/** Subscribe `c`; the outcome is logged (a refused filter as an error). */
export function subscribeTwins(c: MqttClient, o: SubscribeOptions): void {
  const filters = [
    ...TWIN_FILTERS.map((f) => o.share ? `$share/${o.share}/${f}` : f),
    ...o.extra,
  ];
  // MQTT 5: retained messages only for a new subscription (never again after a resubscribe)
  const opts = o.version === 5 ? { qos: 1 as const, rh: 1 } : { qos: 1 as const };
  c.subscribe(filters, opts, (err, granted) => {
    if (err) return o.log.error("cannot subscribe on the broker", { ...o.where, err });
    const refused = (granted ?? []).filter((g) => g.qos > 2);
    for (const g of refused) {
      o.log.error("the broker refused a subscription", { filter: g.topic, reasonCode: g.qos });
    }
    if (refused.length === 0) o.log.info("bridge subscribed", { ...o.where, filters });
  });
}
