/**
 * The twin host: twin actors on the actor runtime, wired to persistence, the durable inbound
 * log, the point sink, the event transport and the device downlink. A facade over the rooms
 * that do the work:
 *
 * - `twin_behavior.ts`: apply one message to a twin (pure `applyTwin`), the host's refusals;
 * - `commit_queue.ts`: group commit of snapshots and retirement of inbound log entries;
 * - `effect_executor.ts`: points, events, downlinks, commands, webhooks of a change;
 * - `rule_timers.ts`: ticks for rule deadlines and command expiry;
 * - `twin_queries.ts`: reads (twin, list, alarms, diagnostics, rule status);
 * - `containment.ts`: quarantined twins and refused device messages;
 * - `inbound_dispatch.ts`: durable device messages to their twins, replay after a restart.
 *
 * Durability: an inbound entry is retired from the log only when the snapshot that includes it
 * is persisted and its telemetry point is written (when a point sink is configured). Dirty
 * twins are group-committed every few milliseconds; HTTP changes reply after their commit.
 * @module
 */
import type { ActorSystem } from "./actor_system.ts";
import { systemClock } from "./clock.ts";
import type { TwinMessage, TwinRecord, TwinState } from "../../actors/twin.ts";
import { type Alarm, parseAlarmId } from "../../actors/rules/alarm.ts";
import type { RuleStatus } from "../../actors/rules/state.ts";
import { alarmsOf } from "../../actors/twin_rules.ts";
import type { AlarmQuery } from "../rules/service.ts";
import type { JsonObject } from "../../actors/json.ts";
import type { JsonLimits } from "../../actors/json_intake.ts";
import { type Command, isOpen } from "../../actors/commands.ts";
import type { Accepted, AcceptGate } from "../bridges/ingest.ts";
import type { PointSink } from "../ports/point_sink.ts";
import type { Logger } from "../obs/log.ts";
import type { Metrics } from "../obs/metrics.ts";
import {
  AlarmNotFoundError,
  CommandQueueFullError,
  TwinNotFoundError,
  UnavailableError,
  VersionConflictError,
} from "../errors.ts";
import type { HostDiagnostics, TwinService } from "./twin_service.ts";
import type { CommitQueue } from "./commit_queue.ts";
import { Containment } from "./containment.ts";
import type { InboundDispatch } from "./inbound_dispatch.ts";
import type { RuleTimers } from "./rule_timers.ts";
import type { Reply } from "./twin_behavior.ts";
import type { TwinQueries } from "./twin_queries.ts";
import { hostParts, type HostPartsOptions } from "./host_parts.ts";
import { HostGate } from "./host_gate.ts";
import type { FleetIndex } from "./fleet_index.ts";
import { storedRecords } from "./list_twins.ts";

/** Options of {@linkcode TwinHost}. */
export interface TwinHostOptions extends HostPartsOptions {
  /** Unretired inbound entries above which ingest is held back. */
  maxPending?: number;
}

/** The host options every node mode sets the same way from its configuration. */
export function hostDefaults(
  cfg: {
    idleMs: number;
    maxPending: number;
    nodeId?: string;
    limits?: { json: JsonLimits; twinMaxBytes: number };
  },
  logger: Logger,
  metrics: Metrics,
  points: PointSink | undefined,
): Pick<
  TwinHostOptions,
  | "clock"
  | "logger"
  | "metrics"
  | "points"
  | "idleMs"
  | "maxPending"
  | "nodeId"
  | "jsonLimits"
  | "maxTwinBytes"
> {
  return {
    nodeId: cfg.nodeId,
    clock: systemClock,
    logger: logger.child("twins"),
    metrics,
    points,
    idleMs: cfg.idleMs,
    maxPending: cfg.maxPending,
    jsonLimits: cfg.limits?.json,
    maxTwinBytes: cfg.limits?.twinMaxBytes,
  };
}

/** Hosts every twin of this node. */
export class TwinHost implements TwinService, AcceptGate {
  readonly #o: TwinHostOptions;
  readonly #sys: ActorSystem<TwinRecord, TwinMessage, Reply>;
  readonly #queue: CommitQueue;
  readonly #containment: Containment;
  readonly #timers: RuleTimers;
  readonly #queries: TwinQueries;
  readonly #inbound: InboundDispatch;
  readonly #gate: HostGate;
  readonly #fleet: FleetIndex;

  constructor(o: TwinHostOptions) {
    this.#o = o;
    const gate = this.#gate = new HostGate({
      pending: () => this.#queue.pending,
      maxPending: o.maxPending,
      points: o.points,
    });
    const parts = hostParts(o, () => gate.wake());
    this.#sys = parts.sys;
    this.#queue = parts.queue;
    this.#containment = parts.containment;
    this.#timers = parts.timers;
    this.#queries = parts.queries;
    this.#inbound = parts.inbound;
    this.#fleet = parts.fleet;
  }

  /** This node's twins counted by site and line, kept up to date (`GET /v1/fleet`). */
  get fleet(): FleetIndex {
    return this.#fleet;
  }

  /**
   * Count the stored twins the fleet index has not seen (after a start, or after acquiring
   * shards); `want` limits it (cluster: owned shards). Returns how many were added.
   */
  seedFleet(want?: (id: string) => boolean): Promise<number> {
    return this.#fleet.seed(storedRecords(this.#o.persistence.snapshots), want);
  }

  /** Unretired inbound entries. */
  get pending(): number {
    return this.#queue.pending;
  }

  /** Messages waiting in twin mailboxes. */
  get mailboxDepth(): number {
    return this.#sys.queued;
  }

  /** Resident twin actors. */
  get resident(): number {
    return this.#sys.size;
  }

  /** Twins with rule timers armed (for tests and metrics). */
  get armed(): number {
    return this.#timers.size;
  }

  /** False while ingest must hold back (too many unretired entries, or the point sink full). */
  canAccept(): boolean {
    return this.#gate.canAccept();
  }

  /** Resolves once `canAccept()` is true (at once if it is). */
  whenAccepting(): Promise<void> {
    return this.#gate.whenAccepting();
  }

  /** The twin as the API shows it, or null if it does not exist. */
  get(id: string): Promise<TwinState | null> {
    return this.#queries.get(id);
  }

  /**
   * Resolve once the change of reply `r` to twin `id` is durable. Throws when the host refused
   * it (size limit, quarantine), or when the twin was quarantined before it could be stored:
   * a change is never acknowledged and then lost.
   */
  async #commit(id: string, r: Reply): Promise<void> {
    this.#refusal(id, r);
    for (;;) {
      await this.#queue.flush();
      const lost = this.#containment.lost(id, r.gen);
      if (lost) throw lost;
      // stored (a later record of the twin holds it too), or nothing of the twin is pending
      // any more; else the store failed for it and retries
      if (!this.#queue.stored(id, r.change ?? 0)) continue;
      // its shard fenced meanwhile (lease lost): the change was dropped unpersisted, or written
      // by a stale owner for the new owner to overwrite — not acknowledged (the client retries)
      if (this.#o.mayPersist?.(id) === false) {
        throw new UnavailableError("shard_moved", `Twin "${id}" moved to another node`);
      }
      return;
    }
  }

  /** Throw the error of a change the host refused. */
  #refusal(id: string, r: Reply): void {
    const err = Containment.refused(id, r.error);
    if (err) throw err;
  }

  /** Create or replace a twin's attributes. Resolves after the change is durable. */
  async putAttributes(id: string, attributes: JsonObject): Promise<TwinState> {
    const r = await this.#sys.send(id, { type: "put_attributes", attributes });
    await this.#commit(id, r);
    return r.state;
  }

  /** Merge-patch desired state (optionally only at version `ifMatch`). Durable on return. */
  async patchDesired(id: string, patch: JsonObject, ifMatch?: number): Promise<TwinState> {
    if (!(await this.get(id))) throw new TwinNotFoundError(id);
    const r = await this.#sys.send(id, { type: "patch_desired", patch, ifMatch });
    if (r.error?.code === "version_conflict") {
      throw new VersionConflictError(id, r.error.expected, r.error.actual);
    }
    await this.#commit(id, r);
    return r.state;
  }

  /** Acknowledge an alarm of a twin on this node; durable on return. */
  async ackAlarm(id: string, comment?: string): Promise<Alarm> {
    const parts = parseAlarmId(id);
    if (!parts || !(await this.get(parts.twin))) throw new AlarmNotFoundError(id);
    const r = await this.#sys.send(parts.twin, { type: "ack_alarm", id, comment });
    this.#refusal(parts.twin, r);
    if (r.error) throw new AlarmNotFoundError(id);
    await this.#commit(parts.twin, r);
    const alarm = alarmsOf(r.record).find((a) => a.id === id);
    if (!alarm) throw new AlarmNotFoundError(id);
    return alarm;
  }

  /**
   * Queue a command for a twin's device (delivered at once when it listens); durable on
   * return. Throws `twin_not_found`, or `command_queue_full` (409).
   */
  async sendCommand(id: string, command: Command): Promise<Command> {
    if (!(await this.get(id))) throw new TwinNotFoundError(id);
    const r = await this.#sys.send(id, { type: "command", command });
    if (r.error?.code === "command_queue_full") throw new CommandQueueFullError(id, r.error.open);
    await this.#commit(id, r);
    this.#o.metrics.commands.inc({ status: "queued" });
    return r.record.commands?.find((c) => c.id === command.id) ?? command;
  }

  /** A twin's commands (open and recent, oldest first), or null if it does not exist. */
  commands(id: string): Promise<Command[] | null> {
    return this.#queries.commands(id);
  }

  /** The device of `id` subscribed to its commands: deliver the open ones. */
  async commandsListening(id: string): Promise<void> {
    const rec = await this.#queries.record(id);
    if (!rec?.commands?.some(isOpen)) return;
    await this.#sys.send(id, { type: "commands_listening" });
  }

  /** What this node knows about a twin it hosts, or null if the twin does not exist. */
  diagnostics(id: string): Promise<HostDiagnostics | null> {
    return this.#queries.diagnostics(id);
  }

  /** Status of a twin's rules (faults, pending timers), or null if it does not exist. */
  ruleStatus(twin: string): Promise<RuleStatus[] | null> {
    return this.#queries.ruleStatus(twin);
  }

  /** Alarms of the twins in the snapshot store (fresher in-memory records win). */
  async listAlarms(q: AlarmQuery): Promise<{ items: Alarm[]; next?: string }> {
    await this.flush();
    return this.#queries.listAlarms(q);
  }

  /** A page of twins in id order whose attributes match `filter` (string comparison). */
  async list(
    after: string | undefined,
    limit: number,
    filter: Record<string, string>,
  ): Promise<{ items: TwinState[]; next?: string }> {
    await this.flush();
    return this.#queries.list(after, limit, filter);
  }

  /** Every persisted twin with a non-empty desired state (to republish retained downlinks). */
  withDesired(): AsyncIterable<TwinState> {
    return this.#queries.withDesired();
  }

  /**
   * Arm the rule timers of stored twins (after a start, or after acquiring shards): every
   * stored twin with rule state or a profile; `want` limits it (cluster: owned shards).
   */
  armStored(want?: (id: string) => boolean): Promise<number> {
    return this.#timers.armStored(want);
  }

  /**
   * A profile changed: every resident twin and every armed twin using it gets a tick soon,
   * which reconciles its rules with the new profile (alarms of removed rules clear).
   */
  reprofile(matches: (state: TwinState) => boolean): Promise<number> {
    return this.#timers.reprofile(matches);
  }

  /** Deliver durable inbound messages to their twins, in order. */
  dispatch(batch: Accepted[]): void {
    this.#inbound.dispatch(batch);
  }

  /** Re-deliver every unretired log entry (after a restart). Returns how many. */
  replay(): Promise<number> {
    const log = this.#o.persistence.log;
    // a log that only retires (the cluster's acknowledgements) has nothing to replay
    return "replay" in log ? this.#inbound.replay(log) : Promise.resolve(0);
  }

  /**
   * Commit every twin changed so far and retire finished log entries. Resolves when a commit
   * that started after this call has finished.
   */
  flush(): Promise<void> {
    return this.#queue.flush();
  }

  /** Drop the matching twins without persisting them (their shard's lease was lost). */
  async discard(pred: (id: string) => boolean): Promise<number> {
    this.#timers.disarm(pred);
    const n = await this.#sys.dropWhere(
      pred,
      (id) => new UnavailableError("shard_moved", `Twin "${id}" moved to another node`),
    );
    this.#queue.dropWhere(pred);
    this.#fleet.drop(pred);
    return n;
  }

  /** Persist and drop the resident twins whose id matches (a shard being handed off). */
  async release(pred: (id: string) => boolean): Promise<number> {
    this.#timers.disarm(pred);
    const n = await this.#sys.passivateWhere(pred);
    this.#fleet.drop(pred); // after the last changes of its twins
    return n;
  }

  /** Passivate idle twins now (also runs on a timer). */
  sweep(): Promise<number> {
    return this.#sys.sweep();
  }

  /** Drain mailboxes, persist everything, stop timers. */
  async close(): Promise<void> {
    this.#timers.close();
    await this.#sys.close();
    await this.#queue.close();
  }
}
