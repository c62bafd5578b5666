/**
 * Shard leases with epochs in JetStream KV: at most one node holds a shard at any time, and
 * every acquisition gets an epoch above all earlier ones, so stores can refuse writes of an
 * older owner.
 *
 * Two buckets:
 * - **Leases** (`twinmill_leases`, bucket TTL = lease duration, history 1): key `shard.{n}` =
 *   `{"node","epoch"}`. Taken with `create` (fails while the key exists), renewed with `update`
 *   at the revision last written (compare-and-set), released with `delete` at that revision.
 *   An owner that stops renewing loses the lease on the **server's** clock — the bucket's max
 *   age removes the key `leaseMs` after its last write — so node clocks and their skew never
 *   decide who owns a shard. nats-server 2.9 has no per-message TTL; the bucket TTL is the
 *   lease duration, the same for every shard.
 * - **Epochs** (`twinmill_epochs`, no TTL): key `shard.{n}` = the last epoch handed out,
 *   bumped with compare-and-set on every acquire, so epochs strictly increase even across
 *   expiries and restarts. Never delete this bucket in a live cluster.
 *
 * Acquire: read the last epoch `e`; `create` the lease as `{node, e+1}`; bump the epoch key
 * `e → e+1` with CAS. The successful bump is what makes `e+1` ours: if it fails (a paused
 * earlier acquirer bumped first), we re-read, rewrite our lease at its revision with the new
 * epoch, and bump again. An epoch is returned only after its bump succeeded, so no two
 * acquisitions ever return the same epoch.
 *
 * **Self-fencing.** A lease is valid locally until `start + leaseMs - marginMs`, where `start`
 * is the injected clock's time when the last successful create/update was *sent* — the server
 * stamps the write later, so its expiry is later still. Past that point the manager drops the
 * lease and calls `onLost` (from a clock timer), and `renew` returns false, without asking the
 * server. The margin covers clock-rate drift and the time the runtime needs to fence.
 *
 * Reads (`owner`, `all`, the epoch read in `acquire`) go to the stream leader
 * (`allow_direct: false`): direct gets may be answered by a lagging replica.
 *
 * @example
 * ```ts
 * await using leases = new LeaseManager({ nc, nodeId: "node-a", clock: systemClock, logger,
 *   onLost: (shard, epoch) => machine.send(shard, { type: "LeaseLost" }) });
 * const got = await leases.acquire(7); // { epoch: 12 } or null (held elsewhere)
 * setInterval(() => leases.renew(7), 1000); // false = lost: fence the shard
 * await leases.release(7); // after the handoff persisted the twins
 * ```
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { type KV, Kvm } from "@nats-io/kv";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import type { Clock, TimerId } from "../runtime/clock.ts";
import type { Logger } from "../obs/log.ts";

/** Who holds a shard, at which epoch. */
export interface LeaseInfo {
  node: string;
  epoch: number;
}

/** A lease this node holds, as it sees it locally. */
export interface HeldLease {
  epoch: number;
  /** Clock time after which this node no longer trusts the lease (self-fencing). */
  validUntil: number;
}

/** Options of a {@linkcode LeaseManager}. */
export interface LeaseManagerOptions {
  nc: NatsConnection;
  /** This node's id, written into its leases. */
  nodeId: string;
  /**
   * Lease duration in ms (default 5000) = the lease bucket's TTL. When the bucket already
   * exists with another TTL, the bucket's TTL wins (and a warning is logged).
   */
  leaseMs?: number;
  /** Self-fence this long before the server could expire the lease. Default `leaseMs / 5`. */
  marginMs?: number;
  /** Times validity and runs the self-fencing timers. */
  clock: Clock;
  logger: Logger;
  /** Called once per lease lost (renew refused, or local validity ran out). Not on release. */
  onLost?: (shard: number, epoch: number) => void;
  /** Bucket names (defaults `twinmill_leases`, `twinmill_epochs`). */
  leaseBucket?: string;
  epochBucket?: string;
  /** Replicas of both buckets (default 1; use 3 on a 3-server cluster). */
  replicas?: number;
}

/** `shard.{n}`: the key of a shard in both buckets. */
export const leaseKey = (shard: number): string => `shard.${shard}`;

/** The lease and epoch buckets are not usable (e.g. the lease bucket has no TTL). */
export class LeaseStoreError extends Error {
  override name = "LeaseStoreError";
  readonly code = "lease_store_invalid";
}

interface Held {
  epoch: number;
  rev: number;
  validUntil: number;
  timer?: TimerId;
}

interface Buckets {
  leases: KV;
  epochs: KV;
}

function isCasFailure(err: unknown): boolean {
  return err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence ||
      err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);
}

/**
 * Acquires, renews and releases shard leases of one node. Operations on the same shard run one
 * after the other; different shards run concurrently. Disposing stops the self-fencing timers
 * and forgets the held leases *without* releasing them (they expire on the server): releasing
 * is the last step of a handoff, after the twins are persisted.
 */
export class LeaseManager implements AsyncDisposable {
  readonly #o: LeaseManagerOptions;
  #leaseMs: number;
  #marginMs: number;
  #open?: Promise<Buckets>;
  #closed = false;
  readonly #held = new Map<number, Held>();
  readonly #queues = new Map<number, Promise<void>>();

  constructor(opts: LeaseManagerOptions) {
    this.#o = opts;
    this.#leaseMs = opts.leaseMs ?? 5000;
    this.#marginMs = opts.marginMs ?? this.#leaseMs / 5;
    if (!(this.#marginMs > 0 && this.#marginMs < this.#leaseMs)) {
      throw new RangeError(`Invalid lease margin ${this.#marginMs} ms: must be in (0, leaseMs)`);
    }
  }

  /** The effective lease duration (the bucket's TTL once {@linkcode open} resolved). */
  get leaseMs(): number {
    return this.#leaseMs;
  }

  /** Creates (or binds to) the buckets. Every other method calls it; call it to fail early. */
  open(): Promise<void> {
    return this.#buckets().then(() => {});
  }

  #buckets(): Promise<Buckets> {
    if (this.#closed) return Promise.reject(new Error("LeaseManager is closed"));
    this.#open ??= this.#create().catch((err) => {
      this.#open = undefined; // let the next call retry
      throw err;
    });
    return this.#open;
  }

  async #create(): Promise<Buckets> {
    const o = this.#o;
    const kvm = new Kvm(o.nc);
    const replicas = o.replicas ?? 1;
    const leaseBucket = o.leaseBucket ?? "twinmill_leases";
    const leases = await kvm.create(leaseBucket, {
      history: 1,
      ttl: this.#leaseMs,
      replicas,
      allow_direct: false,
    });
    const epochs = await kvm.create(o.epochBucket ?? "twinmill_epochs", {
      history: 1,
      replicas,
      allow_direct: false,
    });
    const ttl = (await leases.status()).ttl;
    if (!(ttl > 0)) {
      throw new LeaseStoreError(
        `Cannot use lease bucket "${leaseBucket}": it has no TTL, so leases would never expire`,
      );
    }
    if (ttl !== this.#leaseMs) {
      o.logger.warn("lease bucket exists with another TTL: using it", {
        bucket: leaseBucket,
        requestedMs: this.#leaseMs,
        ttlMs: ttl,
      });
      this.#marginMs = this.#marginMs * ttl / this.#leaseMs;
      this.#leaseMs = ttl;
    }
    return { leases, epochs };
  }

  /** Runs `fn` after the earlier operations on `shard`. */
  #serial<T>(shard: number, fn: () => Promise<T>): Promise<T> {
    const prev = this.#queues.get(shard) ?? Promise.resolve();
    const run = prev.then(fn);
    const tail = run.then(() => {}, () => {});
    this.#queues.set(shard, tail);
    void tail.then(() => {
      if (this.#queues.get(shard) === tail) this.#queues.delete(shard);
    });
    return run;
  }

  /**
   * Takes the lease of `shard` for this node: `{ epoch }` (a new epoch, above every earlier
   * one) or `null` when another node holds it. If this node already holds it (and it is valid
   * locally), returns its current epoch. Store failures other than "held" reject.
   */
  acquire(shard: number): Promise<{ epoch: number } | null> {
    return this.#serial(shard, async () => {
      const { leases, epochs } = await this.#buckets();
      const mine = this.#held.get(shard);
      if (mine && this.#o.clock.now() < mine.validUntil) return { epoch: mine.epoch };
      if (mine) this.#lose(shard, mine, "not renewed in time");
      const k = leaseKey(shard);
      const start = this.#o.clock.now();
      let [epoch, epochRev] = await this.#lastEpoch(epochs, k);
      epoch++;
      let rev: number;
      try {
        rev = await leases.create(k, this.#value(epoch));
      } catch (err) {
        if (isCasFailure(err)) return null; // held by another node
        throw err;
      }
      for (let attempt = 1;; attempt++) {
        try {
          if (epochRev === 0) await epochs.create(k, String(epoch));
          else await epochs.update(k, String(epoch), epochRev);
          break;
        } catch (err) {
          if (!isCasFailure(err) || attempt === 5) {
            await this.#dropStored(leases, k, rev);
            if (isCasFailure(err)) return null;
            throw err;
          }
        }
        // a paused earlier acquirer bumped the epoch after we read it: take the next one
        [epoch, epochRev] = await this.#lastEpoch(epochs, k);
        epoch++;
        try {
          rev = await leases.update(k, this.#value(epoch), rev);
        } catch (err) {
          if (isCasFailure(err)) return null; // our new lease is gone already
          await this.#dropStored(leases, k, rev);
          throw err;
        }
      }
      const validUntil = start + this.#leaseMs - this.#marginMs;
      if (this.#o.clock.now() >= validUntil) {
        // so slow that the lease may have expired meanwhile: do not trust it
        await this.#dropStored(leases, k, rev);
        this.#o.logger.warn("lease acquired too late to trust it", { shard, epoch });
        return null;
      }
      this.#hold(shard, { epoch, rev, validUntil });
      return { epoch };
    });
  }

  /**
   * Extends the lease of `shard` (compare-and-set at the revision this node wrote last).
   * `true`: still ours — renewed, or (on a transient store error, logged) not renewed but still
   * valid locally; the self-fencing timer fires if renewals keep failing. `false`: lost — not
   * held, refused by the store (expired or taken over), or its local validity ran out; the
   * lease is dropped here and `onLost` called (unless it was not held at all).
   */
  renew(shard: number): Promise<boolean> {
    return this.#serial(shard, async () => {
      const h = this.#held.get(shard);
      if (!h) return false;
      const start = this.#o.clock.now();
      if (start >= h.validUntil) {
        this.#lose(shard, h, "not renewed in time");
        return false;
      }
      const { leases } = await this.#buckets();
      const k = leaseKey(shard);
      const timeout = Math.max(1, h.validUntil - start);
      try {
        h.rev = await this.#renewAt(leases, k, h, timeout);
      } catch (err) {
        if (this.#held.get(shard) !== h) return false; // self-fenced meanwhile
        if (isCasFailure(err)) {
          this.#lose(shard, h, "lease expired or taken over");
          return false;
        }
        this.#o.logger.warn("lease renew failed", { shard, epoch: h.epoch, err });
        return this.#o.clock.now() < h.validUntil;
      }
      if (this.#held.get(shard) !== h) return false; // self-fenced while the write was in flight
      h.validUntil = start + this.#leaseMs - this.#marginMs;
      this.#schedule(shard, h);
      return true;
    });
  }

  /** CAS update; on a CAS failure, adopts a newer revision that is our own earlier write. */
  async #renewAt(leases: KV, k: string, h: Held, timeout: number): Promise<number> {
    try {
      return await leases.update(k, this.#value(h.epoch), h.rev, timeout);
    } catch (err) {
      if (!isCasFailure(err)) throw err;
      // an earlier renew may have been written although its ack was lost: the value holds our
      // node and epoch, which no other acquisition can have
      const cur = await leases.get(k);
      if (cur?.operation !== "PUT" || cur.revision <= h.rev) throw err;
      const v = cur.json<LeaseInfo>();
      if (v.node !== this.#o.nodeId || v.epoch !== h.epoch) throw err;
      return await leases.update(k, this.#value(h.epoch), cur.revision, timeout);
    }
  }

  /**
   * Gives the lease of `shard` up at once (delete at the revision this node wrote, so a lease
   * that is no longer ours is left alone). No-op when not held.
   */
  release(shard: number): Promise<void> {
    return this.#serial(shard, async () => {
      const h = this.#held.get(shard);
      if (!h) return;
      this.#forget(shard, h);
      const { leases } = await this.#buckets();
      await this.#dropStored(leases, leaseKey(shard), h.rev);
    });
  }

  /** The current holder of `shard` per the store, or `null` when free. */
  async owner(shard: number): Promise<LeaseInfo | null> {
    const { leases } = await this.#buckets();
    const e = await leases.get(leaseKey(shard));
    return e?.operation === "PUT" ? e.json<LeaseInfo>() : null;
  }

  /** Every held lease in the store: shard → holder. */
  async all(): Promise<Map<number, LeaseInfo>> {
    const { leases } = await this.#buckets();
    const keys: string[] = [];
    for await (const k of await leases.keys()) keys.push(k);
    const out = new Map<number, LeaseInfo>();
    await Promise.all(keys.map(async (k) => {
      const shard = Number(k.slice("shard.".length));
      if (!k.startsWith("shard.") || !Number.isSafeInteger(shard)) return;
      const e = await leases.get(k);
      if (e?.operation === "PUT") out.set(shard, e.json<LeaseInfo>());
    }));
    return new Map([...out].sort(([a], [b]) => a - b));
  }

  /** The leases this node holds and trusts now (local view, no store access). */
  held(): Map<number, HeldLease> {
    const now = this.#o.clock.now();
    const out = new Map<number, HeldLease>();
    for (const [shard, h] of this.#held) {
      if (now < h.validUntil) out.set(shard, { epoch: h.epoch, validUntil: h.validUntil });
    }
    return out;
  }

  /** True when this node holds the lease of `shard` and it is valid locally. */
  isHeld(shard: number): boolean {
    const h = this.#held.get(shard);
    return h !== undefined && this.#o.clock.now() < h.validUntil;
  }

  /** Stops the timers and forgets held leases without releasing them; waits for operations. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#queues.values()]);
    for (const [shard, h] of [...this.#held]) this.#forget(shard, h);
  }

  async #lastEpoch(epochs: KV, k: string): Promise<[number, number]> {
    const e = await epochs.get(k);
    if (!e || e.operation !== "PUT") return [0, e?.revision ?? 0];
    const n = Number(e.string());
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new LeaseStoreError(`Cannot acquire ${k}: its stored epoch "${e.string()}" is corrupt`);
    }
    return [n, e.revision];
  }

  #value(epoch: number): string {
    return JSON.stringify({ node: this.#o.nodeId, epoch } satisfies LeaseInfo);
  }

  async #dropStored(leases: KV, k: string, rev: number): Promise<void> {
    try {
      await leases.delete(k, { previousSeq: rev });
    } catch (err) {
      if (!isCasFailure(err)) this.#o.logger.warn("lease delete failed", { key: k, err });
    }
  }

  #hold(shard: number, h: Held): void {
    this.#held.set(shard, h);
    this.#schedule(shard, h);
  }

  #schedule(shard: number, h: Held): void {
    const { clock } = this.#o;
    if (h.timer !== undefined) clock.clear(h.timer);
    h.timer = clock.setTimeout(() => {
      h.timer = undefined;
      if (this.#held.get(shard) === h) this.#lose(shard, h, "not renewed in time");
    }, Math.max(0, h.validUntil - clock.now()));
  }

  #forget(shard: number, h: Held): void {
    if (h.timer !== undefined) this.#o.clock.clear(h.timer);
    h.timer = undefined;
    if (this.#held.get(shard) === h) this.#held.delete(shard);
  }

  #lose(shard: number, h: Held, why: string): void {
    if (this.#held.get(shard) !== h) return;
    this.#forget(shard, h);
    this.#o.logger.warn("shard lease lost", { shard, epoch: h.epoch, why });
    try {
      this.#o.onLost?.(shard, h.epoch);
    } catch (err) {
      this.#o.logger.error("onLost callback threw", { shard, err });
    }
  }
}
