/**
 * Group commit of inbound device messages. Every accepted message gets the next node-wide
 * sequence at once (so per-device order = accept order); while one batch is being committed to
 * the durable log, new messages gather for the next one. A message's promise resolves — and
 * the broker sends its PUBACK — only after its batch is durable.
 *
 * Backpressure: while the node holds too many unretired messages (InfluxDB down, disk slow),
 * batches wait; acknowledgements are held back rather than anything being dropped.
 * @module
 */
import type { InboundLog, LogEntry } from "../persistence/port.ts";
import type { DeviceBody, DeviceTopic } from "../../actors/validate.ts";
import type { UserProperties } from "../../actors/user_properties.ts";
import type { Logger } from "../obs/log.ts";
import type { Metrics } from "../obs/metrics.ts";
import { setImmediate } from "node:timers";
import { type Origin, originKey } from "./message_key.ts";

/** A validated message with its durable log entry. */
export interface Accepted {
  entry: LogEntry;
  topic: DeviceTopic;
  body: DeviceBody;
  /** Identity of the device's message, to skip its resend (see `TwinMessage.key`). */
  key?: number;
}

/**
 * Where the broker hands validated device messages; resolves when the message is durable.
 * `props`: the message's MQTT 5 user properties, already within their limits
 * (`readUserProperties`), kept with it in the durable log.
 */
export interface IngestPort {
  submit(
    topic: DeviceTopic,
    body: DeviceBody,
    rawTopic: string,
    payload: Uint8Array,
    at: number,
    origin?: Origin,
    props?: UserProperties,
  ): Promise<void>;
}

/** Whether the node takes new input now, and when it will again. */
export interface AcceptGate {
  /** False while the node must hold back new input. */
  canAccept(): boolean;
  /** Resolves once `canAccept()` is true. */
  whenAccepting(): Promise<void>;
}

/** Options of {@linkcode Ingest}. */
export interface IngestOptions {
  log: InboundLog;
  /** First sequence to hand out (one past the log's high-water mark). */
  firstSeq: number;
  /**
   * Called with each durable batch, in order, once its acknowledgements are released (in the
   * next macrotask, so that they are written out before the batch is applied).
   */
  onDurable(batch: Accepted[]): void;
  /** Says when the node must hold back new input (the twin host). */
  gate: AcceptGate;
  logger: Logger;
  metrics: Metrics;
  /** Most entries per commit. Default 900: one Deno KV atomic operation (limit 1000 mutations), so a batch is all-or-nothing. */
  maxBatch?: number;
}

/** The group-commit ingest queue. */
export class Ingest implements IngestPort {
  #seq: number;
  #queue: Accepted[] = [];
  #done: Array<{ resolve(): void; reject(e: unknown): void }> = [];
  #running: Promise<void> | null = null;
  /** The last durable batch's hand-over to `onDurable`. */
  #dispatching: Promise<void> = Promise.resolve();
  #closed = false;
  /** Resolves when `close` is called (ends a wait for the gate). */
  #closing: Promise<void>;
  #close!: () => void;
  readonly #o: IngestOptions;

  constructor(o: IngestOptions) {
    this.#o = o;
    this.#seq = o.firstSeq;
    this.#closing = new Promise((resolve) => (this.#close = resolve));
  }

  /** Messages waiting to be committed. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Accept a validated message; resolves when it is durable. */
  submit(
    topic: DeviceTopic,
    body: DeviceBody,
    rawTopic: string,
    payload: Uint8Array,
    at: number,
    origin?: Origin,
    props?: UserProperties,
  ): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("Ingest is closed"));
    // keyed only when a broker's persistent session may redeliver it (the bridge): a key costs
    // the twin a remembered number, and the embedded broker's sessions end with the node
    const key = origin?.dup === undefined ? undefined : originKey(origin, rawTopic, payload);
    const entry: LogEntry = key === undefined
      ? { seq: this.#seq++, topic: rawTopic, payload, at }
      : { seq: this.#seq++, topic: rawTopic, payload, at, key };
    if (props) entry.props = props;
    this.#queue.push({ entry, topic, body, key });
    const p = new Promise<void>((resolve, reject) => this.#done.push({ resolve, reject }));
    if (!this.#running) this.#running = this.#run();
    return p;
  }

  async #run(): Promise<void> {
    // (the loop always awaits before its `finally`, so `#running` is assigned by then)
    let held = false;
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        if (!this.#o.gate.canAccept()) {
          if (!held) {
            held = true;
            this.#o.metrics.ingestBackpressure.inc();
            this.#o.logger.warn("ingest held back: too many unretired messages", {
              queued: this.#queue.length,
            });
          }
          await Promise.race([this.#o.gate.whenAccepting(), this.#closing]);
          continue;
        }
        if (held) {
          held = false;
          this.#o.logger.info("ingest resumed", { queued: this.#queue.length });
        }
        const n = Math.min(this.#queue.length, this.#o.maxBatch ?? 900);
        const batch = this.#queue.splice(0, n);
        const done = this.#done.splice(0, n);
        try {
          await this.#o.log.append(batch.map((a) => a.entry));
        } catch (err) {
          this.#o.logger.error("cannot make inbound messages durable; refusing them", {
            count: n,
            err,
          });
          for (const d of done) d.reject(err);
          continue;
        }
        const now = Date.now();
        for (let i = 0; i < n; i++) {
          this.#o.metrics.ackLatency.observe((now - batch[i].entry.at) / 1000);
          done[i].resolve();
        }
        this.#o.metrics.messagesAcked.inc(n);
        this.#dispatch(batch);
      }
    } finally {
      this.#running = null;
    }
  }

  /**
   * Hands `batch` to `onDurable` in a later macrotask: the acknowledgements resolved just now
   * are written out first. (The broker's PUBACK writes are flushed only once the microtasks
   * run dry; applying the batch in the same turn, twin after twin, held every one back.)
   */
  #dispatch(batch: Accepted[]): void {
    this.#dispatching = new Promise<void>((resolve) =>
      setImmediate(() => {
        try {
          this.#o.onDurable(batch);
        } finally {
          resolve();
        }
      })
    );
  }

  /** Stop accepting; wait for the batch in progress. Queued, uncommitted messages are refused (never acknowledged). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#close();
    await this.#running;
    await this.#dispatching;
    const err = new Error("Node is shutting down");
    for (const d of this.#done.splice(0)) d.reject(err);
    this.#queue = [];
  }
}
