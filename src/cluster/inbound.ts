/**
 * The cluster's durable inbound log: JetStream stream `TM_IN`, one subject per shard
 * (`tm.in.{shard}`), work-queue retention — a message is removed when the shard's owner acks
 * it, i.e. once its twin is persisted and its point written. Any node's MQTT listener
 * publishes; the PUBACK goes to the device only after JetStream acknowledged the publish.
 * @module
 */
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { createHash } from "node:crypto";
import {
  jetstream,
  type JetStreamClient,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import type { IngestPort, Origin } from "../bridges/ingest.ts";
import type { DeviceBody, DeviceTopic } from "../../actors/validate.ts";
import { shardOf } from "../sharding/shard.ts";
import { subjects } from "../transport/subjects.ts";
import type { Metrics } from "../obs/metrics.ts";

/** Name of the inbound stream. */
export const INBOUND_STREAM = "TM_IN";
/** Header carrying the device's MQTT topic. */
export const H_TOPIC = "tm-topic";
/** Header carrying the arrival time (ms). */
export const H_AT = "tm-at";

/** How long JetStream remembers message ids to drop a device's resend (30 s, in ns). */
const DEDUPE_WINDOW_NS = 30_000_000_000;

/**
 * The JetStream message id of a device message: a QoS 1 resend after a failed or lost
 * PUBACK carries the same client id, packet id and payload, so JetStream stores it once.
 * Two different messages only collide if one client reuses a packet id with the very same
 * payload within the 30 s window (65,536 publishes in 30 s).
 */
export function messageId(origin: Origin, topic: string, payload: Uint8Array): string {
  const hash = createHash("sha256").update(payload).digest("hex").slice(0, 24);
  return `${origin.clientId}/${origin.messageId}/${topic}/${hash}`;
}

/** Create the inbound stream if missing (idempotent). */
export async function ensureInboundStream(nc: NatsConnection, replicas: number): Promise<void> {
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(INBOUND_STREAM);
  } catch {
    await jsm.streams.add({
      name: INBOUND_STREAM,
      subjects: [subjects.inboundAll],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      num_replicas: replicas,
      max_msg_size: 70 * 1024,
      duplicate_window: DEDUPE_WINDOW_NS,
    });
  }
}

/** Ingest into JetStream: resolves when the stream has the message. */
export class JetStreamIngest implements IngestPort {
  readonly #js: JetStreamClient;
  constructor(nc: NatsConnection, readonly shards: number, readonly metrics: Metrics) {
    this.#js = jetstream(nc);
  }

  async submit(
    t: DeviceTopic,
    _body: DeviceBody,
    rawTopic: string,
    payload: Uint8Array,
    at: number,
    origin?: Origin,
  ): Promise<void> {
    const h = headers();
    h.set(H_TOPIC, rawTopic);
    h.set(H_AT, String(at));
    const msgID = origin?.messageId !== undefined
      ? messageId(origin, rawTopic, payload)
      : undefined;
    await this.#js.publish(subjects.inbound(shardOf(t.twin, this.shards)), payload, {
      headers: h,
      msgID,
    });
    this.metrics.messagesAcked.inc();
    this.metrics.ackLatency.observe((Date.now() - at) / 1000);
  }
}
