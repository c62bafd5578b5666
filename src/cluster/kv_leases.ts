/**
 * Shard leases and node heartbeats in JetStream KV.
 *
 * - **Leases** (`tm_leases`, bucket TTL = lease time): key `s{shard}` = `{node, epoch}`, taken
 *   with `create` (fails if someone holds it) and renewed with `update` at the revision last
 *   seen (compare-and-set). An owner that stops renewing loses the lease on the *server's*
 *   clock (the bucket's max age), so node clocks never matter. The owner also fences itself
 *   when it has not renewed for `leaseMs - margin`, before the server could hand the lease on.
 * - **Epochs** (`tm_epochs`, no TTL): key `s{shard}` = last epoch, bumped with
 *   compare-and-set on every acquire, so epochs strictly increase even across expiries.
 * - **Membership** (`tm_nodes`, bucket TTL = 3 heartbeats): key = node id, value = node info,
 *   put every heartbeat; a crashed node's key ages out.
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { KV } from "@nats-io/kv";
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { liveEntries, openBucket } from "../persistence/kv_bucket.ts";
import type { Lease, LeasePort, MembershipPort } from "./coordinator.ts";
import type { Clock, TimerId } from "../runtime/clock.ts";
import type { Logger } from "../obs/log.ts";

const key = (shard: number) => `s${shard}`;

/** Options of {@linkcode KvLeases}. */
export interface KvLeasesOptions {
  nc: NatsConnection;
  nodeId: string;
  /** Lease time (ms); the bucket's max age. Default 3000. */
  leaseMs?: number;
  replicas?: number;
  clock: Clock;
}

/** Shard leases with epochs. */
export class KvLeases implements LeasePort {
  readonly #held = new Map<number, { rev: number; epoch: number; renewedAt: number }>();
  private constructor(
    readonly leases: KV,
    readonly epochs: KV,
    readonly o: KvLeasesOptions & { leaseMs: number },
  ) {}

  /** Open (creating if needed) the lease and epoch buckets. */
  static async open(o: KvLeasesOptions): Promise<KvLeases> {
    const leaseMs = o.leaseMs ?? 3000;
    const replicas = o.replicas ?? 1;
    // reads from the stream leader only: a lagging replica must not show a stale lease
    const leases = await openBucket(o.nc, "tm_leases", {
      history: 1,
      ttl: leaseMs,
      replicas,
      allow_direct: false,
    });
    const epochs = await openBucket(o.nc, "tm_epochs", {
      history: 1,
      replicas,
      allow_direct: false,
    });
    return new KvLeases(leases, epochs, { ...o, leaseMs });
  }

  async acquire(shard: number): Promise<{ epoch: number } | null> {
    const k = key(shard);
    let rev: number;
    try {
      rev = await this.leases.create(k, JSON.stringify({ node: this.o.nodeId, epoch: 0 }));
    } catch {
      return null; // held by another node (or by us from before a restart: it will expire)
    }
    for (let attempt = 0; attempt < 5; attempt++) {
      const e = await this.epochs.get(k);
      const epoch = (e && e.operation === "PUT" ? Number(e.string()) : 0) + 1;
      try {
        if (e) await this.epochs.update(k, String(epoch), e.revision);
        else await this.epochs.create(k, String(epoch));
      } catch {
        continue; // raced with a stale holder's bump: read again
      }
      rev = await this.leases.update(k, JSON.stringify({ node: this.o.nodeId, epoch }), rev);
      this.#held.set(shard, { rev, epoch, renewedAt: this.o.clock.now() });
      return { epoch };
    }
    await this.leases.delete(k, { previousSeq: rev }).catch(() => {});
    return null;
  }

  async renew(shard: number): Promise<boolean> {
    const h = this.#held.get(shard);
    if (!h) return false;
    // self-fence before the server could have expired the lease and given it away
    if (this.o.clock.now() - h.renewedAt > this.o.leaseMs * 0.8) {
      this.#held.delete(shard);
      return false;
    }
    try {
      h.rev = await this.leases.update(
        key(shard),
        JSON.stringify({ node: this.o.nodeId, epoch: h.epoch }),
        h.rev,
      );
      h.renewedAt = this.o.clock.now();
      return true;
    } catch {
      this.#held.delete(shard);
      return false;
    }
  }

  async release(shard: number): Promise<void> {
    const h = this.#held.get(shard);
    this.#held.delete(shard);
    if (h) await this.leases.delete(key(shard), { previousSeq: h.rev }).catch(() => {});
  }

  async all(): Promise<Map<number, Lease>> {
    // not kv.keys(): on a bucket with a max age it can wait forever (nats-server 2.9)
    const entries = await liveEntries(await jetstreamManager(this.o.nc), this.leases, "tm_leases");
    const out = new Map<number, Lease>();
    for (const [k, e] of entries) out.set(Number(k.slice(1)), e.json<Lease>());
    return out;
  }
}

/** What a node announces about itself. */
export interface NodeInfo {
  id: string;
  http: string;
  mqtt: string | null;
  startedAt: number;
  /** Last heartbeat (the sender's clock; informational only). */
  ts: number;
}

/** Node heartbeats. */
export class KvMembership implements MembershipPort {
  #timer?: TimerId;
  private constructor(
    readonly kv: KV,
    readonly jsm: JetStreamManager,
    public info: Omit<NodeInfo, "ts">,
    readonly clock: Clock,
    readonly log: Logger,
  ) {}

  /** Open the bucket and start heartbeating every `heartbeatMs` (default 1000). */
  static async start(
    nc: NatsConnection,
    info: Omit<NodeInfo, "ts">,
    o: { heartbeatMs?: number; replicas?: number; clock: Clock; logger: Logger },
  ): Promise<KvMembership> {
    const hb = o.heartbeatMs ?? 1000;
    const kv = await openBucket(nc, "tm_nodes", {
      history: 1,
      ttl: hb * 3,
      replicas: o.replicas ?? 1,
      allow_direct: false,
    });
    const m = new KvMembership(kv, await jetstreamManager(nc), info, o.clock, o.logger);
    await m.beat();
    m.#timer = o.clock.setInterval(() => void m.beat(), hb);
    return m;
  }

  /** Change what this node announces (e.g. once its listeners are bound) and beat now. */
  announce(info: Partial<Omit<NodeInfo, "ts" | "id">>): Promise<void> {
    this.info = { ...this.info, ...info };
    return this.beat();
  }

  async beat(): Promise<void> {
    try {
      await this.kv.put(this.info.id, JSON.stringify({ ...this.info, ts: this.clock.now() }));
    } catch (err) {
      this.log.warn("heartbeat failed", { err });
    }
  }

  async nodes(): Promise<NodeInfo[]> {
    // not kv.keys(): on a bucket with a max age it can wait forever (nats-server 2.9)
    const entries = await liveEntries(this.jsm, this.kv, "tm_nodes");
    return [...entries.values()].map((e) => e.json<NodeInfo>());
  }

  async liveNodes(): Promise<string[]> {
    return (await this.nodes()).map((n) => n.id);
  }

  /** Stop heartbeating and remove this node at once (graceful leave). */
  async leave(): Promise<void> {
    this.stop();
    await this.kv.delete(this.info.id).catch(() => {});
  }

  stop(): void {
    if (this.#timer !== undefined) this.clock.clear(this.#timer);
    this.#timer = undefined;
  }
}
