/**
 * The shard coordinator of one node: every tick it reads the live nodes, computes which
 * shards this node should own (bounded-load rendezvous over live node ids), renews the leases it
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
import {
  holdsLease,
  initialShardState,
  isServing,
  type ShardAction,
  type ShardMessage,
  type ShardState,
  transition,
} from "../sharding/handoff.ts";
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
  /** The lease is held here and still valid on the local clock (asked before every write). */
  valid(shard: number): boolean;
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

/** A shard's state on this node, as `/v1/cluster` shows it. */
export type ShardStateName = "owned" | "acquiring" | "handing_off" | "fenced";

/** Options of a {@linkcode Coordinator}. */
export interface CoordinatorOptions {
  nodeId: string;
  shards: number;
  leases: LeasePort;
  members: MembershipPort;
  runtime: ShardRuntime;
  /** The owner of every shard over `nodes` (index = shard): `owners` of sharding/placement.ts. */
  owners(shards: number, nodes: readonly string[]): readonly string[];
  clock: Clock;
  logger: Logger;
  /** Placement rounds (default 1000 ms). */
  tickMs?: number;
  /** Lease renewals (default: `tickMs`). */
  renewMs?: number;
  hooks?: { handoff?(): void; leaseLost?(): void; renewed?(): void };
}

/**
 * Drives this node's shard ownership. Each shard's protocol is the pure state machine of
 * `src/sharding/handoff.ts`; the coordinator feeds it messages (placement decisions, lease
 * renewals, and the answers of the work it did) and executes the actions it returns.
 * Messages of one shard are handled one at a time, except `LeaseLost`, which applies at once
 * so that nothing more of a fenced shard is persisted while a handoff step is still running.
 */
export class Coordinator {
  readonly #fsm = new Map<number, ShardState>();
  readonly #queues = new Map<number, Promise<void>>();
  #timer?: TimerId;
  #renewTimer?: TimerId;
  #renewing = false;
  /** When the last renewal round began (clock ms). */
  #renewStarted = -Infinity;
  #ticking: Promise<void> | null = null;
  #leaving = false;
  #settled = false;
  /** The owner of each shard by placement over the live nodes of the last round. */
  #owners: readonly string[] = [];
  constructor(readonly o: CoordinatorOptions) {}

  /** The node placement gives a shard over the live nodes of the last round (a hint). */
  ownerHint(shard: number): string | undefined {
    if (this.owns(shard)) return this.o.nodeId;
    return this.#owners[shard];
  }

  /** The shards this node holds in any way, with their state and epoch. */
  get states(): Map<number, { state: ShardStateName; epoch: number }> {
    const out = new Map<number, { state: ShardStateName; epoch: number }>();
    for (const [shard, s] of this.#fsm) {
      if (s.kind === "unowned") continue;
      out.set(shard, { state: s.kind, epoch: "epoch" in s ? s.epoch : 0 });
    }
    return out;
  }

  /** This node owns the shard and serves it (its lease still valid on the local clock). */
  owns(shard: number): boolean {
    const s = this.#fsm.get(shard);
    return s !== undefined && isServing(s) && this.#leaseValid(shard);
  }

  /**
   * This node may still persist the shard's twins: owned, or handing off before release, and
   * its lease still valid on the local clock. A lease that ran out without a renewal fences the
   * shard here and now, before the renewal timer would (e.g. first thing after a `SIGCONT`).
   */
  mayPersist(shard: number): boolean {
    const s = this.#fsm.get(shard);
    if (!(s?.kind === "owned" || (s?.kind === "handing_off" && s.step !== "releasing"))) {
      return false;
    }
    return this.#leaseValid(shard);
  }

  /**
   * The epoch of the shard's lease while this node may persist its twins ({@linkcode mayPersist}),
   * else undefined: what a snapshot written now carries, for the store to fence by.
   */
  epochOf(shard: number): number | undefined {
    const s = this.#fsm.get(shard);
    return s && "epoch" in s && this.mayPersist(shard) ? s.epoch : undefined;
  }

  /**
   * The store holds a snapshot of the shard written under a later epoch than `epoch`: a newer
   * owner took the shard while this node was not looking (paused past its lease). Fenced at
   * once (state first), unless the shard has moved on here since.
   */
  staleEpoch(shard: number, epoch: number): void {
    const s = this.#fsm.get(shard);
    if (s && holdsLease(s) && "epoch" in s && s.epoch === epoch) void this.#leaseLost(shard);
  }

  /** The shard's lease is valid here; if not, the shard is fenced (state first, at once). */
  #leaseValid(shard: number): boolean {
    if (this.o.leases.valid(shard)) return true;
    void this.#leaseLost(shard); // moves the state to fenced before it returns
    return false;
  }

  /**
   * Fence every shard held here at once: the NATS connection was lost, and while it was, the
   * survivors may have taken the leases over. Nothing written before the loss can reach the
   * server after it (nats.js drops its outbound buffer when it dials again); the shards are
   * acquired again, with new epochs, once connected.
   */
  async fenceAll(): Promise<void> {
    const held = [...this.#fsm].filter(([, s]) => holdsLease(s)).map(([shard]) => shard);
    await Promise.all(held.map((shard) => this.#leaseLost(shard)));
  }

  /** True once every shard this node should own is owned and nothing is in handoff. */
  get settled(): boolean {
    return this.#settled;
  }

  start(): void {
    const every = this.o.tickMs ?? 1000;
    this.#timer = this.o.clock.setInterval(() => void this.tick(), every);
    // renewals run on their own timer: a slow acquire or handoff must not delay them
    const renewEvery = this.o.renewMs ?? every;
    this.#renewTimer = this.o.clock.setInterval(() => void this.renewAll(), renewEvery);
    void this.tick();
  }

  /** Renew every lease held; a failed renewal fences the shard at once. */
  async renewAll(): Promise<void> {
    if (this.#renewing) return;
    this.#renewing = true;
    this.#renewStarted = this.o.clock.now();
    try {
      await Promise.all([...this.#fsm].map(async ([shard, s]) => {
        if (!holdsLease(s)) return;
        if (await this.o.leases.renew(shard).catch(() => false)) this.o.hooks?.renewed?.();
        else if (this.#fsm.get(shard) === s) await this.#leaseLost(shard);
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
    const owners = (this.#owners = o.owners(o.shards, nodes)); // once per round
    // a lost lease must stop its shard before anything else (unless the renewal timer just
    // renewed: rounds come more often than renewals)
    const { renewMs } = o;
    if (renewMs === undefined || o.clock.now() - this.#renewStarted >= renewMs / 2) {
      await this.renewAll();
    }
    const wanted: number[] = [];
    const work: Promise<void>[] = [];
    for (let shard = 0; shard < o.shards; shard++) {
      const want = !this.#leaving && owners[shard] === o.nodeId;
      const kind = this.#fsm.get(shard)?.kind ?? "unowned";
      if (want) wanted.push(shard);
      if (want && kind === "unowned") work.push(this.send(shard, { type: "Acquire" }));
      if (!want && kind === "owned") {
        work.push(this.send(shard, { type: "BeginHandOff", reason: "rebalance" }));
      }
    }
    await Promise.all(work);
    this.#settled = wanted.every((shard) => this.owns(shard)) &&
      [...this.#fsm.values()].every((s) => s.kind === "owned" || s.kind === "unowned");
  }

  /** Feed a message to a shard's state machine (queued behind the shard's running work). */
  send(shard: number, msg: ShardMessage): Promise<void> {
    const prev = this.#queues.get(shard) ?? Promise.resolve();
    const next = prev.then(async () => {
      const actions = this.#apply(shard, msg);
      if (actions) await this.#run(shard, actions);
    });
    const settled = next.catch((err) => this.o.logger.error("shard step failed", { shard, err }));
    this.#queues.set(shard, settled);
    return settled;
  }

  async #leaseLost(shard: number): Promise<void> {
    const s = this.#fsm.get(shard);
    const actions = this.#apply(shard, { type: "LeaseLost" });
    if (!actions || actions.length === 0) return;
    this.#settled = false; // a shard it should own is gone until the next round takes it again
    this.o.hooks?.leaseLost?.();
    this.o.logger.warn("shard lease lost: fenced, twins dropped unpersisted", {
      shard,
      epoch: s && "epoch" in s ? s.epoch : undefined,
    });
    await this.#run(shard, actions);
  }

  /** Transition; returns the actions, or null (logged) when the message is not valid now. */
  #apply(shard: number, msg: ShardMessage): ShardAction[] | null {
    const r = transition(this.#fsm.get(shard) ?? initialShardState(), msg);
    if (!r.ok) {
      this.o.logger.debug("shard message dropped", { shard, error: r.error.message });
      return null;
    }
    this.#fsm.set(shard, r.state);
    if (msg.type === "Acquired") this.o.logger.info("shard acquired", { shard, epoch: msg.epoch });
    if (msg.type === "BeginHandOff") {
      this.o.hooks?.handoff?.();
      this.o.logger.info("handoff: begin", { shard, reason: msg.reason });
    }
    if (msg.type === "Persisted") this.o.logger.info("handoff: persisted", { shard });
    if (msg.type === "Released") this.o.logger.info("handoff: released", { shard });
    return r.actions;
  }

  /** Execute actions in order, feeding each answer back to the state machine. */
  async #run(shard: number, actions: ShardAction[]): Promise<void> {
    for (const a of actions) {
      const answer = await this.#exec(shard, a);
      if (!answer) continue;
      const more = this.#apply(shard, answer);
      if (more) await this.#run(shard, more);
    }
  }

  async #exec(shard: number, a: ShardAction): Promise<ShardMessage | null> {
    const { runtime, leases, logger } = this.o;
    switch (a.type) {
      case "acquireLease": {
        const lease = await leases.acquire(shard).catch((err) => {
          logger.error("cannot take shard lease", { shard, err });
          return null;
        });
        return lease ? { type: "Acquired", epoch: lease.epoch } : { type: "AcquireFailed" };
      }
      case "startConsumer":
        try {
          await runtime.start(shard, a.epoch);
          return null;
        } catch (err) {
          // it failed because this node was paused past its lease (its requests timed out on
          // resume): fenced, as any lost lease — a handoff would log steps of a shard not held
          if (!this.#leaseValid(shard)) return null;
          logger.error("cannot start shard; handing it back", { shard, err });
          return { type: "BeginHandOff", reason: "start_failed" };
        }
      case "stopIntake":
        await runtime.stopIntake(shard);
        return { type: "IntakeStopped" };
      case "drain": {
        const complete = await runtime.drain(shard);
        if (!complete) {
          logger.warn("handoff: drain timed out; the next owner redelivers the rest", { shard });
        }
        return { type: "Drained", complete };
      }
      case "persist":
        await runtime.persist(shard);
        return { type: "Persisted" };
      case "stopConsumer":
        return null; // stopIntake stopped it; persist/fence released its resources
      case "releaseLease":
        await leases.release(shard).catch((err) =>
          logger.warn("lease release failed", { shard, err })
        );
        return { type: "Released" };
      case "dropTwins":
        await runtime.fence(shard);
        return { type: "Stopped" };
    }
  }

  /** Hand off one owned shard (the protocol runs to its end). */
  handOff(shard: number, reason: "rebalance" | "leave" = "rebalance"): Promise<void> {
    return this.send(shard, { type: "BeginHandOff", reason });
  }

  /** Graceful leave: hand off every owned shard, then stop. */
  async leave(): Promise<void> {
    this.#leaving = true;
    if (this.#timer !== undefined) this.o.clock.clear(this.#timer);
    this.#timer = undefined;
    await this.#ticking;
    await this.renewAll(); // keep the leases fresh while handing off
    const owned = [...this.#fsm].filter(([, s]) => s.kind === "owned").map(([shard]) => shard);
    await Promise.all(owned.map((shard) => this.handOff(shard, "leave")));
    await Promise.all([...this.#queues.values()]);
  }

  /** Stop the timers without handing off (a crash is `kill -9`). */
  stop(): void {
    if (this.#timer !== undefined) this.o.clock.clear(this.#timer);
    if (this.#renewTimer !== undefined) this.o.clock.clear(this.#renewTimer);
    this.#timer = undefined;
    this.#renewTimer = undefined;
  }
}
