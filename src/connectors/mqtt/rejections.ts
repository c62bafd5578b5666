/**
 * Rejected device messages. MQTT 3.1.1 has no negative PUBACK, so a rejected message is
 * acknowledged (as mosquitto does with denied publishes, so a device does not retry forever)
 * but diverted to a topic nobody hears: it never reaches a twin, a subscriber or InfluxDB. It
 * is counted by reason, logged once per device per minute, and the last few per device are
 * kept for diagnostics. An MQTT 5 client gets a negative PUBACK instead (`reasons.ts`); its
 * rejected message is counted, kept and diverted here all the same.
 * @module
 */
import type { RejectReason } from "../../../actors/validate.ts";
import type { Rejection } from "../../ports/connector.ts";
import type { Notices } from "./notices.ts";

/** Where rejected messages go: `$SYS` topics are not matched by `#`, and nobody may subscribe. */
export const DROP_TOPIC = "$SYS/twinmill/rejected";
const DROP_LEVELS = DROP_TOPIC.split("/");

/** Rejections kept per device, and devices with rejections kept per broker. */
const KEEP_REJECTIONS = 10;
const MAX_REJECTING_DEVICES = 10_000;

/** True when an MQTT topic filter matches the topic rejected messages are diverted to. */
export function matchesDropTopic(filter: string): boolean {
  const f = filter.split("/");
  if (f[0] !== "$SYS") return false; // wildcards at the first level never match "$" topics
  for (let i = 1; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= DROP_LEVELS.length || (f[i] !== "+" && f[i] !== DROP_LEVELS[i])) return false;
  }
  return f.length === DROP_LEVELS.length;
}

/** Send a packet aedes is about to route to nobody (and never retain it). */
export function divert(packet: { topic: string; retain: boolean }): void {
  packet.topic = DROP_TOPIC;
  packet.retain = false;
}

/** The recent rejections of each device, and the one way to reject a message. */
export class Rejections {
  /** Least recently rejecting device first: it is the one forgotten when the map is full. */
  readonly #rejected = new Map<string, Rejection[]>();

  constructor(readonly notices: Notices) {}

  /** Count, remember and log (once a minute) a rejected message of `key`, and divert it. */
  reject(packet: { topic: string; retain: boolean }, key: string, reason: RejectReason): void {
    this.notices.metrics.messagesRejected.inc({ reason });
    const rejected = this.#rejected;
    let ring = rejected.get(key);
    if (ring) rejected.delete(key);
    else if (rejected.size >= MAX_REJECTING_DEVICES) {
      rejected.delete(rejected.keys().next().value!);
    }
    rejected.set(key, ring ??= []);
    ring.push({ at: Date.now(), reason, topic: packet.topic.slice(0, 200) });
    if (ring.length > KEEP_REJECTIONS) ring.shift();
    if (this.notices.oncePerMinute(key)) {
      this.notices.log.warn("device message rejected", {
        device: key,
        topic: packet.topic.slice(0, 200),
        reason,
      });
    }
    divert(packet);
  }

  /** The twin's recent rejections, newest last (a copy). */
  of(twin: string): Rejection[] {
    return [...(this.#rejected.get(twin) ?? [])];
  }
}
