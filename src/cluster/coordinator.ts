/**
 * The shard coordinator of one node: every tick it reads the live nodes, computes which
 * shards this node should own (rendezvous hashing over live node ids), renews the leases it
 * holds, acquires the shards it should own once their lease is free, and hands off the
 * shards it should no longer own. Each shard runs the explicit handoff protocol:
 *
 * ```
 * unowned ──acquire lease (epoch+1)──► owned: consumer running, requests served
 * owned ──BeginHandOff──► stop intake ──► drain (acks) ──► persist twins ──► release lease ──► unowned
 * owned ──lease lost (renew failed / expired)──► fenced: intake stopped, twins dropped unpersisted ──► unowned
 * ```
 * @module
 */
import type { Logger } from "../obs/log.ts";
import type { Clock, TimerId } from "../runtime/clock.ts";

/** A shard lease with its epoch. */
export interface Lease {
  node: string;
  epoch: number;
}

/** Lease storage (JetStream KV with compare-and-set). */
export interface LeasePort {
  acquire(shard: number): Promise<{ epoch: number } | null>;
  renew(shard: number): Promise<boolean>;
  release(shard: number): Promise<void>;
  all(): Promise<Map<number, Lease>>;
}

/** Live node ids (heartbeats). */
export interface MembershipPort {
  liveNodes(): Promise<string[]>;
}

/** What the coordinator does to start and stop owning a shard. */
export interface ShardRuntime {
  /** Start consuming and serving the shard (after its lease is acquired). */
  start(shard: number, epoch: number): Promise<void>;
  /** Stop intake of new messages. */
  stopIntake(shard: number): Promise<void>;
  /** Wait until every dispatched message is applied and acked. */
  drain(shard: number): Promise<boolean>;
  /** Persist and drop the shard's twins. */
  persist(shard: number): Promise<void>;
  /** Lease lost: drop everything of the shard without persisting. */
  fence(shard: number): Promise<void>;
}

/** A shard's state on this node. */
export type ShardState = "owned" | "acquiring" | "handing_off" | "fenced";

/** Options of a {@linkcode Coordinator}. */
export interface CoordinatorOptions {
  nodeId: string;
  shards: number;
  leases: LeasePort;
  members: MembershipPort;
  runtime: ShardRuntime;
  ownerOf(shard: number, nodes: string[]): string | undefined;
  clock: Clock;
  logger: Logger;
  tickMs?: number;
  hooks?: { handoff?(): void; leaseLost?(): void; renewed?(): void };
}

/** Drives this node's shard ownership. */
export class Coordinator {
  readonly states = new Map<number, { state: ShardState; epoch: number }>();
  #timer?: TimerId;
  #renewTimer?: TimerId;
  #renewing = false;
  #ticking: Promise<void> | null = null;
  #leaving = false;
  #settled = false;
  constructor(readonly o: CoordinatorOptions) {}

  /** Shards this node owns now (serving). */
  owns(shard: number): boolean {
    return this.states.get(shard)?.state === "owned";
  }

  /** True once every shard this node should own is owned and nothing is in handoff. */
  get settled(): boolean {
    return this.#settled;
  }

  start(): void {
    const every = this.o.tickMs ?? 1000;
    this.#timer = this.o.clock.setInterval(() => void this.tick(), every);
    // renewals run on their own timer: a slow acquire or handoff must not delay them
    this.#renewTimer = this.o.clock.setInterval(() => void this.renewAll(), every);
    void this.tick();
  }

  /** Renew every owned lease; a failed renewal fences the shard. */
  async renewAll(): Promise<void> {
    if (this.#renewing) return;
    this.#renewing = true;
    try {
      await Promise.all([...this.states].map(async ([shard, s]) => {
        // a shard being handed off keeps its lease fresh until it is released
        if (s.state !== "owned" && s.state !== "handing_off") return;
        if (await this.o.leases.renew(shard).catch(() => false)) this.o.hooks?.renewed?.();
        else if (this.states.get(shard) === s) await this.#fence(shard);
      }));
    } finally {
      this.#renewing = false;
    }
  }

  /** One round of renew / acquire / hand off. Concurrent calls share the round. */
  tick(): Promise<void> {
    if (!this.#ticking) {
      this.#ticking = this.#round().catch((err) =>
        this.o.logger.error("coordinator round failed", { err })
      ).finally(() => (this.#ticking = null));
    }
    return this.#ticking;
  }

  async #round(): Promise<void> {
    const { o } = this;
    const nodes = this.#leaving ? [] : await o.members.liveNodes();
    if (!this.#leaving && !nodes.includes(o.nodeId)) nodes.push(o.nodeId);
    // renew first: a lost lease must stop the shard before anything else
    await this.renewAll();
    const wanted: number[] = [];
    const work: Promise<void>[] = [];
    for (let shard = 0; shard < o.shards; shard++) {
      const want = !this.#leaving && o.ownerOf(shard, nodes) === o.nodeId;
      const s = this.states.get(shard);
      if (want) wanted.push(shard);
      if (want && !s) work.push(this.#acquire(shard));
      if (!want && s?.state === "owned") work.push(this.handOff(shard));
    }
    await Promise.all(work);
    this.#settled = wanted.every((shard) => this.owns(shard)) &&
      [...this.states.values()].every((s) => s.state === "owned");
  }

  async #acquire(shard: number): Promise<void> {
    this.states.set(shard, { state: "acquiring", epoch: 0 });
    try {
      const lease = await this.o.leases.acquire(shard);
      if (!lease) {
        this.states.delete(shard); // still held by someone else: try next round
        return;
      }
      this.states.set(shard, { state: "acquiring", epoch: lease.epoch });
      await this.o.runtime.start(shard, lease.epoch);
      this.states.set(shard, { state: "owned", epoch: lease.epoch });
      this.o.logger.info("shard acquired", { shard, epoch: lease.epoch });
    } catch (err) {
      this.o.logger.error("cannot take shard", { shard, err });
      this.states.delete(shard);
      await this.o.leases.release(shard).catch(() => {});
    }
  }

  /** The handoff protocol for one owned shard. */
  async handOff(shard: number): Promise<void> {
    const s = this.states.get(shard);
    if (!s || s.state !== "owned") return;
    const { runtime, logger } = this.o;
    s.state = "handing_off";
    this.o.hooks?.handoff?.();
    logger.info("handoff: begin", { shard, epoch: s.epoch });
    await runtime.stopIntake(shard);
    const drained = await runtime.drain(shard);
    if (!drained) {
      logger.warn("handoff: drain timed out; the next owner redelivers the rest", { shard });
    }
    await runtime.persist(shard);
    await this.o.leases.release(shard);
    this.states.delete(shard);
    logger.info("handoff: released", { shard, epoch: s.epoch });
  }

  async #fence(shard: number): Promise<void> {
    const s = this.states.get(shard);
    if (!s) return;
    s.state = "fenced";
    this.o.hooks?.leaseLost?.();
    this.o.logger.warn("shard lease lost: fenced, twins dropped unpersisted", {
      shard,
      epoch: s.epoch,
    });
    await this.o.runtime.fence(shard);
    this.states.delete(shard);
  }

  /** Graceful leave: hand off every owned shard, then stop. */
  async leave(): Promise<void> {
    this.#leaving = true;
    if (this.#timer !== undefined) this.o.clock.clear(this.#timer);
    this.#timer = undefined;
    await this.#ticking;
    await this.renewAll(); // keep the leases fresh while handing off
    await Promise.all([...this.states.keys()].map((shard) => this.handOff(shard)));
  }

  /** Stop without handing off (tests of crashes use kill -9 instead). */
  stop(): void {
    if (this.#timer !== undefined) this.o.clock.clear(this.#timer);
    if (this.#renewTimer !== undefined) this.o.clock.clear(this.#renewTimer);
    this.#timer = undefined;
    this.#renewTimer = undefined;
  }
}
