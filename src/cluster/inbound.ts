/**
 * The cluster's durable inbound log: JetStream stream `TM_IN`, one subject per shard
 * (`tm.in.{shard}`), work-queue retention — a record is removed when the shard's owner acks
 * it, i.e. once the twins of all its messages are persisted and their points written. Any
 * node's MQTT listener publishes, in batches (`batch.ts`); the PUBACK goes to the device only
 * after JetStream acknowledged the batch holding its message.
 * @module
 */
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { continueTrace, currentTrace, traceparentOf } from "../obs/trace.ts";
import {
  type BatchEntry,
  encodeBatch,
  encodeBatchProps,
  MAX_BATCH_BYTES,
  MAX_BATCH_ENTRIES,
  propsHeaderBytes,
} from "./batch.ts";
import {
  jetstream,
  type JetStreamClient,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import type { IngestPort } from "../bridges/ingest.ts";
import { type Origin, originKey } from "../bridges/message_key.ts";
import type { DeviceBody, DeviceTopic } from "../../actors/validate.ts";
import type { UserProperties } from "../../actors/user_properties.ts";
import { shardOf } from "../sharding/shard.ts";
import { subjects } from "../transport/subjects.ts";
import type { Metrics } from "../obs/metrics.ts";

/** Name of the inbound stream. */
export const INBOUND_STREAM = "TM_IN";
/** Header of a batch record (see `batch.ts`); value: the number of entries. */
export const H_BATCH = "tm-batch";
/** Header of a batch record: its entries' MQTT 5 user properties (see `encodeBatchProps`). */
export const H_PROPS = "tm-props";
/** Header carrying the device's MQTT topic (single-message records). */
export const H_TOPIC = "tm-topic";
/** Header carrying the arrival time in ms (single-message records). */
export const H_AT = "tm-at";

/** Largest record: a full batch plus one more device message and headers. */
const MAX_RECORD_BYTES = MAX_BATCH_BYTES + 128 * 1024;
/** Publishes in flight per shard; later messages gather for the next batch. */
const MAX_PUBLISHES_IN_FLIGHT = 1;

/** Create the inbound stream if missing (idempotent); raise an older stream's size limit. */
export async function ensureInboundStream(nc: NatsConnection, replicas: number): Promise<void> {
  const jsm = await jetstreamManager(nc);
  let info;
  try {
    info = await jsm.streams.info(INBOUND_STREAM);
  } catch {
    await jsm.streams.add({
      name: INBOUND_STREAM,
      subjects: [subjects.inboundAll],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      num_replicas: replicas,
      max_msg_size: MAX_RECORD_BYTES,
    });
    return;
  }
  if (info.config.max_msg_size < MAX_RECORD_BYTES) {
    await jsm.streams.update(INBOUND_STREAM, { max_msg_size: MAX_RECORD_BYTES });
  }
}

interface Waiting {
  entry: BatchEntry;
  resolve(): void;
  reject(err: unknown): void;
}

interface ShardQueue {
  waiting: Waiting[];
  inFlight: number;
}

/**
 * Ingest into JetStream: resolves when the stream has the message. Messages are group
 * committed per shard: a message goes out at once when no publish of its shard is in flight
 * (`MAX_PUBLISHES_IN_FLIGHT` = 1); otherwise it waits and leaves with every message that
 * gathered meanwhile, as one batch record. A device's PUBACK goes out when its batch is
 * stored (all replicas).
 */
export class JetStreamIngest implements IngestPort {
  readonly #js: JetStreamClient;
  readonly #queues = new Map<number, ShardQueue>();
  constructor(nc: NatsConnection, readonly shards: number, readonly metrics: Metrics) {
    this.#js = jetstream(nc);
  }

  submit(
    t: DeviceTopic,
    _body: DeviceBody,
    rawTopic: string,
    payload: Uint8Array,
    at: number,
    origin?: Origin,
    props?: UserProperties,
  ): Promise<void> {
    const key = originKey(origin, rawTopic, payload);
    const shard = shardOf(t.twin, this.shards);
    let q = this.#queues.get(shard);
    if (!q) this.#queues.set(shard, q = { waiting: [], inFlight: 0 });
    const done = new Promise<void>((resolve, reject) => {
      const entry: BatchEntry = { topic: rawTopic, payload, at, key };
      if (props) entry.props = props;
      q.waiting.push({ entry, resolve, reject });
    });
    if (q.inFlight < MAX_PUBLISHES_IN_FLIGHT) this.#flush(shard, q);
    return done;
  }

  #flush(shard: number, q: ShardQueue): void {
    if (q.waiting.length === 0) {
      if (q.inFlight === 0) this.#queues.delete(shard);
      return;
    }
    let n = 0;
    let bytes = 0;
    while (
      n < q.waiting.length && n < MAX_BATCH_ENTRIES && (n === 0 || bytes < MAX_BATCH_BYTES)
    ) {
      const e = q.waiting[n++].entry;
      bytes += e.payload.length + propsHeaderBytes(e.props);
    }
    const batch = q.waiting.splice(0, n);
    q.inFlight++;
    const h = headers();
    h.set(H_BATCH, String(batch.length));
    const entries = batch.map((w) => w.entry);
    const props = encodeBatchProps(entries);
    if (props !== undefined) h.set(H_PROPS, props);
    // one trace per record: the owner's log lines while applying it carry its trace id
    h.set("traceparent", traceparentOf(currentTrace() ?? continueTrace(null)));
    this.#js.publish(subjects.inbound(shard), encodeBatch(entries), {
      headers: h,
    }).then(
      () => {
        const now = Date.now();
        this.metrics.messagesAcked.inc(batch.length);
        for (const w of batch) {
          this.metrics.ackLatency.observe((now - w.entry.at) / 1000);
          w.resolve();
        }
      },
      (err) => batch.forEach((w) => w.reject(err)),
    ).finally(() => {
      q.inFlight--;
      this.#flush(shard, q);
    });
  }
}
