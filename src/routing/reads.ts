/**
 * Routed reads, batched per owner node, group-commit style: a read goes out at once when
 * fewer than {@linkcode MAX_BATCHES_IN_FLIGHT} batches to its twin's expected owner are in
 * flight; otherwise it waits for one to come back and leaves with every read that queued
 * meanwhile, in one `gets` request. One read alone pays one round trip; under load the cost of
 * a NATS round trip is shared by the batch. A batch is sent only after each of its reads
 * arrived, so a read still sees every change completed before it was made. The expected owner
 * comes from placement; when it is wrong (a handoff in progress) it answers `not_owner` and
 * those reads go to the shard's subject, which only the lease holder serves.
 * @module
 */
import type { TwinState } from "../../actors/twin.ts";
import { type Transport, TransportError } from "../transport/port.ts";
import { subjects } from "../transport/subjects.ts";
import { errorOf, NOT_OWNER, type Reps, send, unavailable } from "./wire.ts";

/** Most reads in one batched request. */
const MAX_BATCH = 256;
/** Batched reads in flight per target; later reads wait and go together in the next batch. */
export const MAX_BATCHES_IN_FLIGHT = 2;

/** A batch to an expected owner node got no answer (retried through the shards). */
class NodeUnreachable extends Error {
  constructor(override readonly cause: TransportError) {
    super(cause.message);
  }
}

interface PendingGet {
  id: string;
  shard: number;
  resolve(state: TwinState | null): void;
  reject(err: unknown): void;
}

/** Reads waiting for a batch to one target, and how many batches are in flight. */
interface BatchQueue {
  /** `tm.node.{id}` (batch to the expected owner) or `tm.shard.{n}` (to the shard). */
  subject: string;
  waiting: PendingGet[];
  inFlight: number;
}

/** Options of {@linkcode RoutedReads}. */
export interface RoutedReadsOptions {
  transport: Transport;
  /** Longest wait for a batch's reply (default 5000 ms). */
  timeoutMs?: number;
  /** The node expected to own a shard (placement over the live nodes), if known. */
  ownerHint?(shard: number): string | undefined;
}

/** Reads of twins other nodes own, batched per target. */
export class RoutedReads {
  readonly #queues = new Map<string, BatchQueue>();
  constructor(readonly o: RoutedReadsOptions) {}

  /** Read twin `id` of `shard` from its expected owner (or, `viaShard`, from the shard). */
  get(id: string, shard: number, viaShard = false): Promise<TwinState | null> {
    const owner = viaShard ? undefined : this.o.ownerHint?.(shard);
    const subject = owner ? subjects.node(owner) : subjects.shard(shard);
    let q = this.#queues.get(subject);
    if (!q) this.#queues.set(subject, q = { subject, waiting: [], inFlight: 0 });
    const p = new Promise<TwinState | null>((resolve, reject) => {
      q.waiting.push({ id, shard, resolve, reject });
    });
    if (q.inFlight < MAX_BATCHES_IN_FLIGHT) this.#flush(q);
    return p;
  }

  #flush(q: BatchQueue): void {
    const batch = q.waiting.splice(0, MAX_BATCH);
    if (batch.length === 0) {
      if (q.inFlight === 0) this.#queues.delete(q.subject);
      return;
    }
    q.inFlight++;
    // Reads of one twin in one batch share one answer: all of them arrived before it was sent.
    const index = new Map<string, number>();
    for (const b of batch) if (!index.has(b.id)) index.set(b.id, index.size);
    const ids = [...index.keys()];
    const toNode = q.subject.startsWith(subjects.node(""));
    send(this.o.transport, q.subject, { op: "gets", ids }, this.o.timeoutMs ?? 5000, (e) =>
      // a node that does not answer: its twins' shards may have moved, ask them directly
      toNode ? new NodeUnreachable(e) : unavailable(
        batch[0].shard,
        ids.length === 1 ? `twin "${ids[0]}"` : `${ids.length} twins`,
        e,
      )).then(
        (rep) => {
          const results = (rep as Reps).results;
          for (const b of batch) {
            const r = results?.[index.get(b.id)!];
            if (!r) b.reject(new Error(`Reply from ${q.subject} misses twin "${b.id}"`));
            else if ("state" in r) b.resolve(r.state);
            else if (r.error.code === NOT_OWNER.code) this.#retry(b);
            else b.reject(errorOf(r.error));
          }
        },
        (err) => {
          for (const b of batch) err instanceof NodeUnreachable ? this.#retry(b) : b.reject(err);
        },
      ).finally(() => {
        q.inFlight--;
        this.#flush(q);
      });
  }

  /** Ask the twin's shard (its lease holder) after its expected owner could not answer. */
  #retry(b: PendingGet): void {
    this.get(b.id, b.shard, true).then(b.resolve, b.reject);
  }
}
