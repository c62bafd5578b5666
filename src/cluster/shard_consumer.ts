/**
 * The owner side of a shard: one durable pull consumer per shard (`tm-shard-{n}`, filter
 * `tm.in.{n}`; nats-server 2.9 has no multi-filter consumers). Messages are dispatched to the
 * twin host in stream order; each is acked only when the host retires it (twin persisted and
 * point written), through the shared {@linkcode AckRegistry}. Unacked messages are redelivered
 * to the next owner, which resumes from its snapshot: twins ignore stream sequences they have
 * already applied, so every acknowledged message is applied exactly once, in order.
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import {
  AckPolicy,
  type ConsumerMessages,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type JsMsg,
} from "@nats-io/jetstream";
import { H_AT, H_TOPIC, INBOUND_STREAM } from "./inbound.ts";
import { subjects } from "../transport/subjects.ts";
import { parseDeviceBody, parseDeviceTopic } from "../../actors/validate.ts";
import type { Accepted } from "../bridges/ingest.ts";
import type { InboundLog } from "../persistence/port.ts";
import type { Logger } from "../obs/log.ts";

/**
 * Messages dispatched but not yet acked, by stream sequence, across all shards of a node. As
 * the twin host's {@linkcode InboundLog}, "retire" means ack.
 */
export class AckRegistry implements InboundLog {
  readonly #msgs = new Map<number, { msg: JsMsg; shard: number }>();
  readonly #perShard = new Map<number, number>();

  /** Track a delivered message; false if it is already in flight (a redelivery). */
  add(msg: JsMsg, shard: number): boolean {
    const known = this.#msgs.get(msg.seq);
    if (known) {
      known.msg = msg; // ack the latest delivery
      return false;
    }
    this.#msgs.set(msg.seq, { msg, shard });
    this.#perShard.set(shard, (this.#perShard.get(shard) ?? 0) + 1);
    return true;
  }

  /** Messages of `shard` dispatched and not yet acked. */
  inFlight(shard: number): number {
    return this.#perShard.get(shard) ?? 0;
  }

  /** Forget a shard's messages without acking them (lease lost: the next owner gets them). */
  forget(shard: number): void {
    for (const [seq, m] of this.#msgs) if (m.shard === shard) this.#msgs.delete(seq);
    this.#perShard.delete(shard);
  }

  append(): Promise<void> {
    return Promise.reject(new Error("the cluster appends through JetStream publish"));
  }

  retire(seqs: number[]): Promise<void> {
    for (const s of seqs) {
      const m = this.#msgs.get(s);
      if (!m) continue;
      this.#msgs.delete(s);
      this.#perShard.set(m.shard, (this.#perShard.get(m.shard) ?? 1) - 1);
      m.msg.ack();
    }
    return Promise.resolve();
  }

  async *replay(): AsyncIterable<never> {}

  lastSeq(): Promise<number> {
    return Promise.resolve(0);
  }
}

/** Options of a {@linkcode ShardConsumer}. */
export interface ShardConsumerOptions {
  nc: NatsConnection;
  shard: number;
  acks: AckRegistry;
  dispatch(batch: Accepted[]): void;
  logger: Logger;
}

/** Consumes one shard's inbound subject while this node owns the shard. */
export class ShardConsumer {
  #iter?: ConsumerMessages;
  #loop?: Promise<void>;
  constructor(readonly o: ShardConsumerOptions) {}

  /** Durable consumer name of a shard. */
  static durable(shard: number): string {
    return `tm-shard-${shard}`;
  }

  /**
   * Recreate the shard's durable consumer and start dispatching. Recreating (rather than
   * binding) makes everything the previous owner left unacked deliverable at once instead of
   * after the ack wait — work-queue retention keeps exactly the unacked messages — and cuts
   * off a stale owner still pulling from the old consumer.
   */
  async start(): Promise<void> {
    const { nc, shard } = this.o;
    const name = ShardConsumer.durable(shard);
    const jsm = await jetstreamManager(nc);
    await jsm.consumers.delete(INBOUND_STREAM, name).catch(() => false);
    {
      await jsm.consumers.add(INBOUND_STREAM, {
        durable_name: name,
        filter_subject: subjects.inbound(shard),
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: 30_000_000_000, // 30 s in ns: redelivery if an owner dies holding messages
        max_ack_pending: 2_000, // bounds what one shard holds in memory
      });
    }
    const consumer = await jetstream(nc).consumers.get(INBOUND_STREAM, name);
    this.#iter = await consumer.consume({ max_messages: 1000 });
    const iter = this.#iter;
    this.#loop = (async () => {
      for await (const m of iter) this.#onMessage(m);
    })().catch((err) => this.o.logger.error("shard consumer stopped", { shard, err }));
  }

  #onMessage(m: JsMsg): void {
    const topic = m.headers?.get(H_TOPIC) ?? "";
    const at = Number(m.headers?.get(H_AT) ?? Date.now());
    const t = parseDeviceTopic(topic);
    const body = typeof t === "string" ? t : parseDeviceBody(t, m.data);
    if (typeof t === "string" || typeof body === "string") {
      this.o.logger.error("invalid message in the inbound stream; acked and dropped", {
        shard: this.o.shard,
        seq: m.seq,
      });
      m.ack();
      return;
    }
    if (!this.o.acks.add(m, this.o.shard)) return; // still being applied: not twice
    this.o.dispatch([{ entry: { seq: m.seq, topic, payload: m.data, at }, topic: t, body }]);
  }

  /** Stop taking new messages (handoff step "stop intake"). */
  async stop(): Promise<void> {
    this.#iter?.stop();
    await this.#loop;
  }

  /** Wait until every dispatched message of the shard is acked (handoff step "drain"). */
  async drain(timeoutMs = 30_000): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (this.o.acks.inFlight(this.o.shard) > 0) {
      if (Date.now() > end) return false;
      await new Promise((r) => setTimeout(r, 5));
    }
    return true;
  }
}
