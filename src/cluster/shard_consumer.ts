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
import { H_AT, H_BATCH, H_PROPS, H_TOPIC, INBOUND_STREAM } from "./inbound.ts";
import { type BatchEntry, decodeBatch, decodeBatchProps, entrySeq, streamSeqOf } from "./batch.ts";
import { continueTrace, withTrace } from "../obs/trace.ts";
import { subjects } from "../transport/subjects.ts";
import { parseDeviceBody, parseDeviceTopic } from "../../actors/validate.ts";
import type { JsonLimits } from "../../actors/json_intake.ts";
import type { Accepted } from "../bridges/ingest.ts";
import type { LogEntry, LogRetirer } from "../persistence/port.ts";
import type { Logger } from "../obs/log.ts";

/** How long one pull waits on the server (idle heartbeats every half of it). */
const PULL_EXPIRES_MS = 5_000;
/** Longest pause between two attempts to recreate a shard's consumer after a reconnect (ms). */
const RESTART_RETRY_MAX_MS = 2_000;

/**
 * Stream records dispatched but not yet acked, across all shards of a node. A record holds
 * one or more log entries (`batch.ts`); as the twin host's {@linkcode LogRetirer}, "retire"
 * counts an entry done, and a record is acked when its last entry is retired.
 */
export class AckRegistry implements LogRetirer {
  readonly #msgs = new Map<number, { msg: JsMsg; shard: number; left: number }>();
  readonly #perShard = new Map<number, number>();
  /** Per shard, who waits for it to have nothing in flight ({@linkcode drained}). */
  readonly #waiting = new Map<number, Set<() => void>>();

  /**
   * Track a delivered record of `entries` entries still to retire; false if it is already in
   * flight (a redelivery). A record with nothing to retire is acked at once.
   */
  add(msg: JsMsg, shard: number, entries = 1): boolean {
    const known = this.#msgs.get(msg.seq);
    if (known) {
      known.msg = msg; // ack the latest delivery
      return false;
    }
    if (entries === 0) {
      msg.ack();
      return true;
    }
    this.#msgs.set(msg.seq, { msg, shard, left: entries });
    this.#perShard.set(shard, (this.#perShard.get(shard) ?? 0) + 1);
    return true;
  }

  /** Records of `shard` dispatched and not yet acked. */
  inFlight(shard: number): number {
    return this.#perShard.get(shard) ?? 0;
  }

  /**
   * Resolves once no record of `shard` is in flight (at once if none is), or false if `abort`
   * fires first. Retiring a shard's last record and {@linkcode forget} wake it.
   */
  drained(shard: number, abort?: AbortSignal): Promise<boolean> {
    if (this.inFlight(shard) === 0) return Promise.resolve(true);
    if (abort?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      let waiting = this.#waiting.get(shard);
      if (!waiting) this.#waiting.set(shard, waiting = new Set());
      const wake = () => {
        abort?.removeEventListener("abort", give);
        resolve(true);
      };
      const give = () => {
        waiting.delete(wake);
        if (waiting.size === 0 && this.#waiting.get(shard) === waiting) this.#waiting.delete(shard);
        resolve(false);
      };
      waiting.add(wake);
      abort?.addEventListener("abort", give, { once: true });
    });
  }

  /** Wake whoever waits for `shard` once nothing of it is in flight. */
  #wake(shard: number): void {
    const waiting = this.#waiting.get(shard);
    if (!waiting || this.inFlight(shard) > 0) return;
    this.#waiting.delete(shard);
    for (const wake of waiting) wake();
  }

  /** Forget a shard's records without acking them (lease lost: the next owner gets them). */
  forget(shard: number): void {
    for (const [seq, m] of this.#msgs) if (m.shard === shard) this.#msgs.delete(seq);
    this.#perShard.delete(shard);
    this.#wake(shard);
  }

  /** Entries done; their records are acked once all their entries are. */
  retire(seqs: number[]): Promise<void> {
    for (const s of seqs) {
      const seq = streamSeqOf(s);
      const m = this.#msgs.get(seq);
      if (!m || --m.left > 0) continue;
      this.#msgs.delete(seq);
      this.#perShard.set(m.shard, (this.#perShard.get(m.shard) ?? 1) - 1);
      m.msg.ack();
      this.#wake(m.shard);
    }
    return Promise.resolve();
  }
}

/** The log entries of a stream record: a batch, or one message with headers (older nodes). */
export function recordEntries(m: {
  seq: number;
  data: Uint8Array;
  headers?: { get(k: string): string };
}): BatchEntry[] {
  if (m.headers?.get(H_BATCH)) {
    const entries = decodeBatch(m.data);
    const props = m.headers.get(H_PROPS);
    if (props) decodeBatchProps(props, entries);
    return entries;
  }
  const at = Number(m.headers?.get(H_AT) || Date.now());
  return [{ topic: m.headers?.get(H_TOPIC) ?? "", payload: m.data, at }];
}

/** Options of a {@linkcode ShardConsumer}. */
export interface ShardConsumerOptions {
  nc: NatsConnection;
  shard: number;
  acks: AckRegistry;
  dispatch(batch: Accepted[]): void;
  logger: Logger;
  /** Limits of the JSON intake (the broker that took the message applied the same). */
  jsonLimits?: JsonLimits;
  /**
   * False once this node may no longer apply the shard's records (its lease is gone): a record
   * delivered then is given back at once (nak), not held until its ack wait (30 s) runs out.
   * A node paused past its lease pulls, on resume, from the new owner's consumer of the same
   * name; the records it got would otherwise wait 30 s before reaching the owner.
   */
  owned?(): boolean;
}

/** Consumes one shard's inbound subject while this node owns the shard. */
export class ShardConsumer {
  #iter?: ConsumerMessages;
  #loop?: Promise<void>;
  #stopped = false;
  #restarting: Promise<void> = Promise.resolve();
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
    // stopped while starting (fenced, or handed off): the consumer is the next owner's now
    if (this.#stopped) return;
    await jsm.consumers.delete(INBOUND_STREAM, name).catch(() => false);
    {
      await jsm.consumers.add(INBOUND_STREAM, {
        durable_name: name,
        filter_subject: subjects.inbound(shard),
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: 30_000_000_000, // 30 s in ns: redelivery if an owner dies holding messages
        max_ack_pending: 256, // records (batches): bounds what one shard holds in memory
      });
    }
    const consumer = await jetstream(nc).consumers.get(INBOUND_STREAM, name);
    // Pulls expire after 5 s, so idle heartbeats come every 2.5 s and a pull lost with its
    // consumer leader (a NATS server restarting) is noticed after 2 missed ones and re-issued:
    // with the default 30 s, the shard stalled for ~30-40 s after a NATS server restart.
    const iter = await consumer.consume({ max_messages: 256, expires: PULL_EXPIRES_MS });
    if (this.#stopped) return iter.stop(); // stopped while starting
    this.#iter = iter;
    this.#loop = (async () => {
      for await (const m of iter) this.#onMessage(m);
    })().catch((err) => this.o.logger.error("shard consumer stopped", { shard, err }));
  }

  #onMessage(m: JsMsg): void {
    if (this.o.owned?.() === false) return m.nak();
    let entries: BatchEntry[];
    try {
      entries = recordEntries(m);
    } catch (err) {
      this.o.logger.error("malformed record in the inbound stream; acked and dropped", {
        shard: this.o.shard,
        seq: m.seq,
        err,
      });
      m.ack();
      return;
    }
    const batch: Accepted[] = [];
    for (const [i, e] of entries.entries()) {
      const t = parseDeviceTopic(e.topic);
      const body = typeof t === "string" ? t : parseDeviceBody(t, e.payload, this.o.jsonLimits);
      if (typeof t === "string" || typeof body === "string") {
        this.o.logger.error("invalid message in the inbound stream; dropped", {
          shard: this.o.shard,
          seq: m.seq,
          index: i,
        });
        continue;
      }
      const entry: LogEntry = {
        seq: entrySeq(m.seq, i),
        topic: e.topic,
        payload: e.payload,
        at: e.at,
      };
      if (e.props) entry.props = e.props;
      batch.push({ entry, topic: t, body, key: e.key });
    }
    if (!this.o.acks.add(m, this.o.shard, batch.length)) return; // still being applied
    if (batch.length === 0) return;
    const tp = m.headers?.get("traceparent");
    if (!tp) return this.o.dispatch(batch);
    withTrace(continueTrace(tp), () => {
      this.o.logger.debug("applying inbound record", {
        shard: this.o.shard,
        seq: m.seq,
        messages: batch.length,
      });
      this.o.dispatch(batch);
    });
  }

  /** Stop taking new messages (handoff step "stop intake"). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#iter?.stop();
    await this.#loop;
  }

  /**
   * Recreate the consumer (after a reconnect): records the server delivered while the
   * connection was down would otherwise wait for the ack wait (30 s) to come again. Records
   * still being applied are not dispatched twice (see {@linkcode AckRegistry.add}).
   */
  restart(): Promise<void> {
    // one restart at a time: two overlapping ones would leave an iterator running
    this.#restarting = this.#restarting.then(async () => {
      if (this.#stopped) return;
      this.#iter?.stop();
      await this.#loop;
      // Right after a reconnect the JetStream API may time out (a NATS server restarting, its
      // streams electing leaders): a shard left without a consumer would stall, its messages
      // durable but applied only at its next handoff. Try again until it starts or stops.
      for (let attempt = 1; !this.#stopped; attempt++) {
        try {
          return await this.start();
        } catch (err) {
          this.o.logger.warn("shard consumer restart failed; retrying", {
            shard: this.o.shard,
            attempt,
            err,
          });
          await new Promise((r) => setTimeout(r, Math.min(RESTART_RETRY_MAX_MS, 250 * attempt)));
        }
      }
    });
    return this.#restarting;
  }

  /**
   * Wait until every dispatched message of the shard is acked (handoff step "drain"); false
   * if that takes longer than `timeoutMs`.
   */
  async drain(timeoutMs = 30_000): Promise<boolean> {
    const late = new AbortController();
    const timer = setTimeout(() => late.abort(), timeoutMs);
    try {
      return await this.o.acks.drained(this.o.shard, late.signal);
    } finally {
      clearTimeout(timer);
    }
  }
}
