/**
 * The audit log of a cluster: JetStream stream `TM_AUDIT` (subject `tm.audit.{node}`, limits
 * retention: 90 days or 256 MiB, oldest first), so any node answers `GET /v1/audit` for every
 * node. A stream's `max_bytes` is reserved against the server's JetStream storage: at 1 GiB it
 * took the test servers' whole file store and a restarted server never caught up `TM_IN`.
 * Same contract as the file log: `record` never blocks (a bounded queue, overflow dropped and
 * counted), entries are redacted, queries give the newest matches first.
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import {
  DeliverPolicy,
  DiscardPolicy,
  jetstream,
  type JetStreamClient,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import {
  type AuditEntry,
  type AuditInput,
  type AuditQuery,
  matches,
  toEntry,
} from "./audit_entry.ts";
import type { DenialGate } from "./audit_gate.ts";
import { subjects } from "../transport/subjects.ts";

/** Name of the audit stream. */
const AUDIT_STREAM = "TM_AUDIT";
/** Most entries one query reads (bounds its time; narrow with `since`). */
const MAX_SCAN = 200_000;

/** The cluster-wide audit log. */
export class JetStreamAudit implements AsyncDisposable {
  dropped = 0;
  written = 0;
  readonly #queue: AuditEntry[] = [];
  #running: Promise<void> | null = null;
  #closed = false;
  private constructor(
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly subject: string,
    readonly maxQueue: number,
  ) {}

  /** Create the stream if missing and start. */
  static async open(
    nc: NatsConnection,
    o: { nodeId: string; replicas?: number; maxQueue?: number },
  ): Promise<JetStreamAudit> {
    const jsm = await jetstreamManager(nc);
    try {
      await jsm.streams.info(AUDIT_STREAM);
    } catch {
      await jsm.streams.add({
        name: AUDIT_STREAM,
        subjects: [subjects.auditAll],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        num_replicas: o.replicas ?? 1,
        max_age: 90 * 24 * 3600 * 1e9,
        max_bytes: 256 * 1024 ** 2,
        discard: DiscardPolicy.Old,
      }).catch(async (err) => {
        // another node created it meanwhile
        await jsm.streams.info(AUDIT_STREAM).catch(() => Promise.reject(err));
      });
    }
    return new JetStreamAudit(nc, jetstream(nc), subjects.audit(o.nodeId), o.maxQueue ?? 10_000);
  }

  /** Bounds the entries of refusals (see {@linkcode DenialGate}); none by default. */
  gate?: DenialGate;

  /**
   * Enqueue (never blocks, never throws), through {@linkcode gate} when set; dropped and
   * counted when the queue is full.
   */
  record(e: AuditInput): void {
    if (!this.gate) return this.#enqueue(e);
    for (const x of this.gate.admit(e)) this.#enqueue(x);
  }

  #enqueue(e: AuditInput): void {
    const entry = this.#closed || this.#queue.length >= this.maxQueue
      ? undefined
      : toEntry(e, typeof e.ts === "number" ? e.ts : Date.now());
    if (!entry) {
      this.dropped++;
      return;
    }
    this.#queue.push(entry);
    this.#running ??= this.#drain().finally(() => (this.#running = null));
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, 256);
      const results = await Promise.allSettled(
        batch.map((e) => this.js.publish(this.subject, JSON.stringify(e))),
      );
      for (const r of results) r.status === "fulfilled" ? this.written++ : this.dropped++;
    }
  }

  /** Resolves once everything recorded so far is stored (or counted as dropped). */
  async flush(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /** The newest `limit` entries of every node matching `q`, newest first. */
  async query(q: AuditQuery): Promise<AuditEntry[]> {
    await this.flush();
    const jsm = await jetstreamManager(this.nc);
    const state = (await jsm.streams.info(AUDIT_STREAM)).state;
    if (state.messages === 0) return [];
    const c = await this.js.consumers.get(AUDIT_STREAM, {
      filter_subjects: subjects.auditAll,
      ...(q.since !== undefined
        ? {
          deliver_policy: DeliverPolicy.StartTime,
          opt_start_time: new Date(q.since).toISOString(),
        }
        : { deliver_policy: DeliverPolicy.All }),
    });
    const out: AuditEntry[] = [];
    const last = state.last_seq;
    const first = Math.max(state.first_seq, last - MAX_SCAN + 1);
    const msgs = await c.consume();
    try {
      // nothing newer than `since`: the consumer would wait; stop at the idle heartbeat
      const idle = setTimeout(() => msgs.stop(), 2_000);
      for await (const m of msgs) {
        idle.refresh();
        if (m.seq >= first) {
          try {
            const e = JSON.parse(m.string()) as AuditEntry;
            if (matches(e, q)) {
              out.push(e);
              if (out.length > q.limit) out.shift();
            }
          } catch { /* a malformed entry is skipped */ }
        }
        if (m.seq >= last) break;
      }
      clearTimeout(idle);
    } finally {
      msgs.stop();
    }
    return out.reverse();
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
