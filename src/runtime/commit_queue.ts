/**
 * The twin host's commit queue: group commit of changed twins and retirement of inbound log
 * entries.
 *
 * Durability: an inbound entry is retired from the log only when every need on it is met —
 * the snapshot that includes it is committed, its points are written, its delivery finished.
 * Changed twins are group-committed every few milliseconds; a store that fails for every twin
 * is retried with backoff (nothing is dropped), a twin that alone cannot be stored is handed
 * to `unstorable` (its unsaved changes are given up). Entries of fenced twins (this node may
 * no longer persist them) are never retired here: the next owner gets them again.
 * @module
 */
import type { Clock, TimerId } from "./clock.ts";
import type { TwinRecord } from "../../actors/twin.ts";
import type { LogRetirer, SnapshotStore } from "../persistence/port.ts";
import type { Logger } from "../obs/log.ts";
import type { Metrics } from "../obs/metrics.ts";
import { MAX_SAVE_ATTEMPTS, unstorable } from "./quarantine.ts";
import { saveBatch } from "./save_batch.ts";
import { StoreBackoff } from "./store_backoff.ts";

/** Options of a {@linkcode CommitQueue}. */
export interface CommitQueueOptions {
  snapshots: SnapshotStore;
  log: LogRetirer;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  /** Delay of the group commit (ms). Default 5. */
  flushDelayMs?: number;
  /** False for twins this node may no longer persist: their changes are dropped. */
  mayPersist?(id: string): boolean;
  /** True while twin `id` is resident (its commit time is kept for diagnostics). */
  resident(id: string): boolean;
  /**
   * Twin `id` cannot be stored: its latest record `dropped` and the `lost` entries applied to
   * it since its last stored snapshot are given up (the entries are retired after this call).
   */
  unstorable(id: string, dropped: TwinRecord, lost: number, err: unknown): void;
  /** The number of unretired entries went down (ingest may be waiting for room). */
  drained?(): void;
}

/** Group commit of twin snapshots and retirement of the inbound entries they hold. */
export class CommitQueue {
  readonly #o: CommitQueueOptions;
  /** Unretired entry seq -> outstanding needs (snapshot, point, processing guard). */
  readonly #needs = new Map<number, number>();
  /** Entries of fenced twins: never retired by this node. Cleared when re-delivered. */
  readonly #fenced = new Set<number>();
  /** Retired seqs waiting to be deleted from the log. */
  #retire: number[] = [];
  /** Latest record of each changed twin not yet handed to a commit. */
  #dirty = new Map<string, TwinRecord>();
  /** Entry seqs applied to each dirty twin since its last commit. */
  #dirtySeqs = new Map<string, number[]>();
  /** Records being committed right now. */
  #committing = new Map<string, TwinRecord>();
  /** Twins of `#committing` dropped meanwhile (shard lost): a failed commit does not keep them. */
  readonly #droppedWhileCommitting = new Set<string>();
  #flushTimer: TimerId | undefined;
  #flushing: Promise<void> | null = null;
  #waiters: Array<() => void> = [];
  #closed = false;
  /**
   * Change numbers: of each record handed to a commit (until it is stored), and the last
   * stored per twin while a newer change of it waits (resident twins keep neither).
   */
  #changes = 0;
  readonly #changeOf = new WeakMap<TwinRecord, number>();
  readonly #savedChange = new Map<string, number>();
  /** When each resident twin's snapshot was last committed (ms); bounded by residency. */
  readonly #savedAt = new Map<string, number>();
  /** Rounds in a row each twin failed to be stored while others were. */
  readonly #failures = new Map<string, number>();
  readonly #backoff: StoreBackoff;

  constructor(o: CommitQueueOptions) {
    this.#o = o;
    this.#backoff = new StoreBackoff(o.clock, o.logger);
  }

  /** Unretired inbound entries. */
  get pending(): number {
    return this.#needs.size;
  }

  /** The record of twin `id` waiting for or in a commit, if any. */
  uncommitted(id: string): TwinRecord | undefined {
    return this.#dirty.get(id) ?? this.#committing.get(id);
  }

  /** True while a change of twin `id` waits for or is in a commit. */
  has(id: string): boolean {
    return this.#dirty.has(id) || this.#committing.has(id);
  }

  /** True once change number `change` of twin `id` is stored, or nothing of it is pending. */
  stored(id: string, change: number): boolean {
    return !this.has(id) || (this.#savedChange.get(id) ?? 0) >= change;
  }

  /** Last commit of twin `id` by this node (ms), while resident. */
  savedAt(id: string): number | undefined {
    return this.#savedAt.get(id);
  }

  /** Twin `id` leaves memory: commit what is pending of it, forget what is kept meanwhile. */
  async evict(id: string): Promise<void> {
    while (this.has(id)) await this.flush();
    this.#savedAt.delete(id);
    this.#savedChange.delete(id);
    this.#o.snapshots.forget?.(id);
  }

  /** Entry `seq` is being delivered: its processing guard, released with `done`. */
  begin(seq: number): void {
    this.#fenced.delete(seq); // a new delivery starts clean
    this.#needs.set(seq, 1);
  }

  /** Entry `seq` has one more need (a point being written). */
  need(seq: number): void {
    this.#needs.set(seq, (this.#needs.get(seq) ?? 0) + 1);
  }

  /** True while entry `seq` is delivered here and not retired (it has needs left). */
  unretired(seq: number): boolean {
    return this.#needs.has(seq);
  }

  /** One need of entry `seq` is met; with none left it is retired. */
  done(seq: number): void {
    if (this.#fenced.has(seq)) return;
    const n = (this.#needs.get(seq) ?? 0) - 1;
    if (n > 0) {
      this.#needs.set(seq, n);
      return;
    }
    this.#needs.delete(seq);
    this.#retire.push(seq);
    this.#o.metrics.inboundPending.set(this.#needs.size);
    this.#o.drained?.();
    this.#scheduleFlush();
  }

  /** Never retire entry `seq` here: its effects were dropped unpersisted. */
  forget(seq: number): void {
    this.#needs.delete(seq);
    this.#fenced.add(seq);
    this.#o.drained?.();
  }

  /** Retire entry `seq` with the next commit (it cannot be applied at all). */
  retireUnread(seq: number): void {
    this.#retire.push(seq);
  }

  /** Publish the number of unretired entries. */
  report(): void {
    this.#o.metrics.inboundPending.set(this.#needs.size);
  }

  /**
   * Hand twin `id`'s new record to the next commit; `seq`, the entry applied (if any), is
   * retired once that commit is stored. Returns the change number.
   */
  change(id: string, rec: TwinRecord, seq: number | undefined): number {
    const n = ++this.#changes;
    this.#changeOf.set(rec, n);
    this.#dirty.set(id, rec);
    if (seq !== undefined) {
      this.need(seq);
      const l = this.#dirtySeqs.get(id);
      if (l) l.push(seq);
      else this.#dirtySeqs.set(id, [seq]);
    }
    this.#scheduleFlush();
    return n;
  }

  /** Drop the uncommitted changes of the matching twins; their entries are never retired. */
  dropWhere(pred: (id: string) => boolean): void {
    const seqs: number[][] = [];
    for (const id of [...this.#dirty.keys()]) {
      if (!pred(id)) continue;
      this.#dirty.delete(id);
      seqs.push(this.#dirtySeqs.get(id) ?? []);
      this.#dirtySeqs.delete(id);
    }
    for (const l of seqs) for (const s of l) this.forget(s);
    for (const id of this.#committing.keys()) if (pred(id)) this.#droppedWhileCommitting.add(id);
  }

  #scheduleFlush(): void {
    if (this.#flushTimer !== undefined || this.#closed) return;
    this.#flushTimer = this.#o.clock.setTimeout(() => {
      this.#flushTimer = undefined;
      void this.flush();
    }, this.#o.flushDelayMs ?? 5);
  }

  /**
   * Commit every twin changed so far and retire finished log entries. Resolves when a commit
   * that started after this call has finished.
   */
  flush(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#waiters.push(resolve);
      if (!this.#flushing) this.#flushing = this.#flushLoop();
    });
  }

  async #flushLoop(): Promise<void> {
    // Yield first, so `#flushing` is assigned before the `finally` below can clear it.
    await Promise.resolve();
    try {
      while (this.#waiters.length > 0 || this.#dirty.size > 0 || this.#retire.length > 0) {
        const waiters = this.#waiters.splice(0);
        const storeDown = await this.#commitRound();
        if (storeDown) {
          // the store fails for every twin (down, full, ...): nothing is dropped, commits
          // wait and retry, backing off; acknowledgements stay held meanwhile
          this.#waiters.unshift(...waiters);
          await this.#backoff.wait();
          continue;
        }
        this.#backoff.succeeded();
        for (const w of waiters) w();
        if (this.#closed && this.#dirty.size === 0) break;
        if (this.#waiters.length === 0) break;
      }
    } finally {
      this.#flushing = null;
      if (this.#dirty.size > 0 || this.#retire.length > 0) this.#scheduleFlush();
    }
  }

  /** One commit: the dirty twins, then the retired entries. True when the store is down. */
  async #commitRound(): Promise<boolean> {
    const batch = this.#dirty;
    const seqs = this.#dirtySeqs;
    this.#dirty = new Map();
    this.#dirtySeqs = new Map();
    this.#fence(batch, seqs);
    this.#committing = batch;
    let storeDown = false;
    if (batch.size > 0) {
      const { failed, all } = await saveBatch(this.#o.snapshots, batch, (ids) => {
        let n = 0;
        const at = this.#o.clock.now();
        for (const id of ids) {
          n++;
          if (this.#o.resident(id)) this.#savedAt.set(id, at);
          const rec = batch.get(id)!;
          const change = this.#changeOf.get(rec);
          this.#changeOf.delete(rec);
          // with nothing newer pending, `stored` holds without it
          if (change !== undefined && this.#dirty.has(id)) this.#savedChange.set(id, change);
          else this.#savedChange.delete(id);
        }
        this.#o.metrics.snapshotsWritten.inc(n);
      }, this.#o.mayPersist);
      this.#committing = new Map();
      for (const [id, l] of seqs) {
        if (failed.has(id)) continue;
        this.#failures.delete(id);
        for (const s of l) this.done(s);
      }
      for (const [id, err] of failed) {
        const rec = batch.get(id)!;
        // dropped (its shard lost) while this commit ran, or no longer to be persisted here:
        // not kept for another try, which could come once the shard is owned again (a stale
        // record written under a later lease)
        if (this.#droppedWhileCommitting.has(id) || this.#o.mayPersist?.(id) === false) {
          this.#failures.delete(id);
          for (const s of seqs.get(id) ?? []) this.forget(s);
          continue;
        }
        // a twin is blamed only when others were stored in the same round
        const n = all ? (this.#failures.get(id) ?? 0) : (this.#failures.get(id) ?? 0) + 1;
        if (unstorable(rec, err) || n >= MAX_SAVE_ATTEMPTS) {
          this.#failures.delete(id);
          this.#giveUp(id, rec, seqs.get(id) ?? [], err);
          continue;
        }
        this.#failures.set(id, n);
        // kept (a newer record of it may be waiting already) and tried again
        if (!this.#dirty.has(id)) this.#dirty.set(id, rec);
        this.#dirtySeqs.set(id, [...seqs.get(id) ?? [], ...(this.#dirtySeqs.get(id) ?? [])]);
        if (all) storeDown = true;
      }
      this.#droppedWhileCommitting.clear();
      if (storeDown) {
        this.#backoff.failed(
          "cannot persist twin snapshots",
          failed.size,
          failed.values().next().value,
        );
      }
    }
    const retire = this.#retire.splice(0);
    if (retire.length > 0) {
      try {
        await this.#o.log.retire(retire);
      } catch (err) {
        storeDown = true;
        this.#retire.push(...retire);
        this.#backoff.failed("cannot retire inbound log entries", retire.length, err);
      }
    }
    return storeDown;
  }

  /** Remove from a commit batch the twins this node may no longer persist. */
  #fence(batch: Map<string, TwinRecord>, seqs: Map<string, number[]>): void {
    const may = this.#o.mayPersist;
    if (!may) return;
    let fenced = 0;
    for (const id of batch.keys()) {
      if (may(id)) continue;
      batch.delete(id);
      for (const s of seqs.get(id) ?? []) this.forget(s);
      seqs.delete(id);
      fenced++;
    }
    if (fenced > 0) {
      this.#o.logger.warn("changes of fenced twins dropped (shard no longer owned)", {
        twins: fenced,
      });
    }
  }

  /**
   * Twin `id` cannot be stored: its unsaved changes, also those applied on top of it since the
   * commit began, are dropped; their entries are retired (applied again they would only fail
   * again).
   */
  #giveUp(id: string, rec: TwinRecord, seqs: number[], err: unknown): void {
    const later = this.#dirtySeqs.get(id) ?? [];
    const dropped = this.#dirty.get(id) ?? rec;
    this.#dirty.delete(id);
    this.#dirtySeqs.delete(id);
    const lost = [...seqs, ...later];
    this.#o.unstorable(id, dropped, lost.length, err);
    for (const s of lost) this.done(s);
  }

  /** Commit what is left and stop scheduling commits. */
  async close(): Promise<void> {
    await this.flush();
    this.#closed = true;
    if (this.#flushTimer !== undefined) this.#o.clock.clear(this.#flushTimer);
    this.#flushTimer = undefined;
  }
}
