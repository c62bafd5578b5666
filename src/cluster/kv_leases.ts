/**
 * Shard leases and node heartbeats in JetStream KV.
 *
 * - **Leases** (`tm_leases`, bucket TTL = lease time): key `s{shard}` = `{node, epoch}`, taken
 *   with `create` (fails if someone holds it) and renewed with `update` at the revision last
 *   seen (compare-and-set). An owner that stops renewing loses the lease on the *server's*
 *   clock (the bucket's max age). The owner also fences itself when it has not renewed for
 *   80% of `leaseMs` (counted from when it *sent* its last successful renewal), before the
 *   server could hand the lease on; {@linkcode KvLeases.valid} says so to every write.
 * - **Takeover** of a dead member's lease before it expires: when the holder's liveness
 *   subject has no responders (its connection is gone, `liveness.ts`) and the lease stays at
 *   the same revision for `takeoverMs` (two renewal intervals, 1 s: a holder that
 *   can still renew changes it meanwhile), the lease is taken by compare-and-set on that
 *   revision, with the next epoch. A holder that was in fact alive fails its next renewal
 *   (the revision moved) and fences itself. This node's own lease left over from before (a
 *   restart, or a shard fenced after a lost connection) is taken back the same way, at once.
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
import type { Liveness } from "./liveness.ts";

const key = (shard: number) => `s${shard}`;

/** Options of {@linkcode KvLeases}. */
export interface KvLeasesOptions {
  nc: NatsConnection;
  nodeId: string;
  /** Lease time (ms); the bucket's max age. Default 3000. */
  leaseMs?: number;
  replicas?: number;
  clock: Clock;
  /** Probes lease holders; without it, leases are taken only once they expired. */
  liveness?: Liveness;
  /** A gone holder's lease must stay at one revision this long before it is taken (ms). */
  takeoverMs?: number;
}

/** Default {@linkcode KvLeasesOptions.takeoverMs}: two renewal intervals (0.5 s each). */
export const TAKEOVER_MS = 1000;

/** A takeover due within this long (ms, about a coordinator round) waits in `acquire`. */
const WAIT_MAX_MS = 250;

/** Shard leases with epochs. */
export class KvLeases implements LeasePort {
  readonly #held = new Map<number, { rev: number; epoch: number; renewedAt: number }>();
  /** Leases of gone holders being watched: the revision seen first and since when. */
  readonly #suspects = new Map<number, { rev: number; node: string; since: number }>();
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
    let rev: number;
    try {
      rev = await this.leases.create(key(shard), JSON.stringify({ node: this.o.nodeId, epoch: 0 }));
    } catch {
      // held by another node, or by us from before a restart or a lost connection
      const taken = await this.#takeOver(shard);
      if (taken === null) return null;
      rev = taken;
    }
    this.#suspects.delete(shard);
    return await this.#bumpEpoch(shard, rev);
  }

  /**
   * The lease's new revision once taken over by compare-and-set, or null: it is ours from
   * before, or its holder is gone and it stayed unrenewed for `takeoverMs`.
   */
  async #takeOver(shard: number): Promise<number | null> {
    const k = key(shard);
    const e = await this.leases.get(k);
    if (!e || e.operation !== "PUT") return null; // free now (expired): the next round creates it
    const holder = e.json<Lease>().node;
    const mine = JSON.stringify({ node: this.o.nodeId, epoch: 0 });
    // ours, and not renewed here: left from a restart or fenced; no one else renews it
    if (holder === this.o.nodeId) return await this.#cas(k, mine, e.revision);
    const live = this.o.liveness;
    if (!live || !(await live.gone(holder))) {
      this.#suspects.delete(shard);
      return null;
    }
    const now = this.o.clock.now();
    const seen = this.#suspects.get(shard);
    if (!seen || seen.rev !== e.revision || seen.node !== holder) {
      this.#suspects.set(shard, { rev: e.revision, node: holder, since: now });
      return null;
    }
    const left = seen.since + (this.o.takeoverMs ?? TAKEOVER_MS) - now;
    if (left > WAIT_MAX_MS) return null; // the next round tries again
    if (left > 0) {
      // almost due: wait here rather than for the next round, then ask again
      await new Promise<void>((r) => this.o.clock.setTimeout(r, left));
      if (!(await live.gone(holder))) return null;
    }
    // fails if the holder renewed after all: it is alive and keeps the lease
    return await this.#cas(k, mine, e.revision);
  }

  /** `update` at `rev`: the new revision, or null when the key moved on meanwhile. */
  #cas(k: string, value: string, rev: number): Promise<number | null> {
    return this.leases.update(k, value, rev).catch(() => null);
  }

  /** Bump the shard's epoch (compare-and-set) and write it into the lease held at `rev`. */
  async #bumpEpoch(shard: number, rev: number): Promise<{ epoch: number } | null> {
    const k = key(shard);
    const sent = this.o.clock.now();
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
      this.#held.set(shard, { rev, epoch, renewedAt: sent });
      return { epoch };
    }
    await this.leases.delete(k, { previousSeq: rev }).catch(() => {});
    return null;
  }

  /**
   * True while the lease of `shard` is held here and its last successful renewal was *sent*
   * less than 80% of the lease time ago: the server cannot have expired it, nor (with the
   * takeover's revision check) handed it on. Every write of the shard asks first.
   */
  valid(shard: number): boolean {
    const h = this.#held.get(shard);
    return h !== undefined && this.o.clock.now() - h.renewedAt <= this.o.leaseMs * 0.8;
  }

  async renew(shard: number): Promise<boolean> {
    const h = this.#held.get(shard);
    if (!h) return false;
    // self-fence before the server could have expired the lease and given it away
    if (!this.valid(shard)) {
      this.#held.delete(shard);
      return false;
    }
    const sent = this.o.clock.now(); // the server applied it later: count from here
    try {
      h.rev = await this.leases.update(
        key(shard),
        JSON.stringify({ node: this.o.nodeId, epoch: h.epoch }),
        h.rev,
      );
      h.renewedAt = sent;
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
  /** It answers liveness probes on `tm.alive.{id}` (nodes before that did not). */
  alive?: boolean;
  /** It places shards by bounded load (nodes before that did not say): upgrade_placement.ts. */
  placement?: "bounded";
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
    readonly liveness?: Liveness,
  ) {}

  /**
   * Open the bucket and start heartbeating every `heartbeatMs` (default 1000). With
   * `liveness`, this node announces that it answers probes, and {@linkcode liveNodes} leaves
   * out the nodes whose probes have no responders.
   */
  static async start(
    nc: NatsConnection,
    info: Omit<NodeInfo, "ts">,
    o: {
      heartbeatMs?: number;
      replicas?: number;
      clock: Clock;
      logger: Logger;
      liveness?: Liveness;
    },
  ): Promise<KvMembership> {
    const hb = o.heartbeatMs ?? 1000;
    const kv = await openBucket(nc, "tm_nodes", {
      history: 1,
      ttl: hb * 3,
      replicas: o.replicas ?? 1,
      allow_direct: false,
    });
    const me = o.liveness ? { ...info, alive: true } : info;
    const jsm = await jetstreamManager(nc);
    const m = new KvMembership(kv, jsm, me, o.clock, o.logger, o.liveness);
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

  /** Nodes with a heartbeat, less those whose liveness probe found no responders. */
  async liveNodes(): Promise<string[]> {
    const live = this.liveness;
    const nodes = await this.nodes();
    if (!live) return nodes.map((n) => n.id);
    const gone = await Promise.all(nodes.map((n) => n.alive === true && live.gone(n.id)));
    return nodes.filter((_, i) => !gone[i]).map((n) => n.id);
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
