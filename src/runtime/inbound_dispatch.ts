/**
 * Durable inbound device messages to their twins: each is delivered in order, its log entry
 * guarded until delivered, and retired through the commit queue once its effects are
 * persisted. After a restart, every unretired entry is delivered again.
 * @module
 */
import type { TwinMessage, TwinRecord } from "../../actors/twin.ts";
import { parseDeviceBody, parseDeviceTopic } from "../../actors/validate.ts";
import { DEFAULT_JSON_LIMITS, type JsonLimits } from "../../actors/json_intake.ts";
import type { Accepted } from "../bridges/ingest.ts";
import type { InboundLog, LogEntry } from "../persistence/port.ts";
import type { Logger } from "../obs/log.ts";
import { TwinmillError } from "../errors.ts";
import type { ActorSystem } from "./actor_system.ts";
import type { CommitQueue } from "./commit_queue.ts";
import type { Containment } from "./containment.ts";
import type { Reply } from "./twin_behavior.ts";

/** What an {@linkcode InboundDispatch} delivers with. */
export interface InboundDispatchParts {
  sys: ActorSystem<TwinRecord, TwinMessage, Reply>;
  queue: CommitQueue;
  containment: Containment;
  logger: Logger;
  /** Name of the durable log device messages come from (the twin dedupes per source). */
  source?: string;
  /** Limits of the JSON intake, for device messages read back from the durable log. */
  jsonLimits?: JsonLimits;
}

/** Senders wait for mailbox room: a durable message is never refused for a full mailbox. */
const WAIT = { wait: true };

/** Delivers durable inbound messages. */
export class InboundDispatch {
  readonly #p: InboundDispatchParts;

  constructor(parts: InboundDispatchParts) {
    this.#p = parts;
  }

  /** Deliver durable inbound messages to their twins, in order. */
  dispatch(batch: Accepted[]): void {
    const { sys, queue } = this.#p;
    for (const a of batch) {
      const seq = a.entry.seq;
      queue.begin(seq); // processing guard, released once delivered
      const msg: TwinMessage = {
        type: "device",
        source: this.#p.source ?? "mqtt",
        seq,
        at: a.entry.at,
        body: a.body,
        key: a.key,
        props: a.entry.props,
      };
      sys.send(a.topic.twin, msg, WAIT).then(
        (r) => {
          if (r.error?.code === "twin_too_large" || r.error?.code === "twin_quarantined") {
            this.#p.containment.refuse(a.topic.twin, a.entry.topic, r.error);
          }
          queue.done(seq);
        },
        (err) => {
          if (err instanceof TwinmillError && err.code === "shard_moved") {
            queue.forget(seq); // not applied here: the shard's next owner applies it
            return;
          }
          this.#p.logger.error("inbound message could not be applied; retired as failed", {
            twin: a.topic.twin,
            seq,
            err,
          });
          queue.done(seq);
        },
      );
    }
    queue.report();
  }

  /** Re-deliver every unretired entry of `log` (after a restart). Returns how many. */
  async replay(log: InboundLog): Promise<number> {
    let n = 0;
    let batch: Accepted[] = [];
    const limits = this.#p.jsonLimits ?? DEFAULT_JSON_LIMITS;
    const decode = (e: LogEntry): Accepted | null => {
      const t = parseDeviceTopic(e.topic);
      if (typeof t === "string") return null;
      const body = parseDeviceBody(t, e.payload, limits);
      return typeof body === "string" ? null : { entry: e, topic: t, body, key: e.key };
    };
    for await (const e of log.replay()) {
      const a = decode(e);
      if (!a) {
        this.#p.queue.retireUnread(e.seq);
        continue;
      }
      batch.push(a);
      n++;
      if (batch.length >= 1000) {
        this.dispatch(batch);
        batch = [];
      }
    }
    this.dispatch(batch);
    return n;
  }
}
