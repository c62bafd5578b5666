/**
 * Reads of the twin host: a twin, its commands, rule status and diagnostics, pages of twins
 * and of alarms. The freshest record wins: in memory, then waiting for a commit, then stored.
 * @module
 */
import type { TwinRecord, TwinState } from "../../actors/twin.ts";
import type { Alarm } from "../../actors/rules/alarm.ts";
import { type RuleStatus, ruleStatus } from "../../actors/rules/state.ts";
import { alarmsOf } from "../../actors/twin_rules.ts";
import type { Command } from "../../actors/commands.ts";
import type { AlarmQuery } from "../rules/service.ts";
import type { SnapshotStore } from "../persistence/port.ts";
import type { Clock } from "./clock.ts";
import type { CommitQueue } from "./commit_queue.ts";
import type { Containment } from "./containment.ts";
import type { RuleTimers } from "./rule_timers.ts";
import type { HostDiagnostics } from "./twin_service.ts";
import { listAlarms, listTwins, storedRecords } from "./list_twins.ts";

/** `rec` if its twin exists (a record at version 0 is a twin not created yet). */
const existing = (rec: TwinRecord | null | undefined): TwinRecord | null =>
  rec && rec.state.version > 0 ? rec : null;

/** What {@linkcode TwinQueries} read from. */
export interface TwinQueriesParts {
  snapshots: SnapshotStore;
  clock: Clock;
  /** This node's name (diagnostics). */
  nodeId?: string;
  queue: CommitQueue;
  containment: Containment;
  timers: RuleTimers;
  /** A resident twin's current record (not one that could not be stored). */
  peek(id: string): TwinRecord | undefined;
  /** True while twin `id` is loaded in memory. */
  resident(id: string): boolean;
  /** A resident twin's mailbox depth and last activity; null if not resident. */
  actor(id: string): { depth: number; lastActive: number } | null;
}

/** The twin host's reads. */
export class TwinQueries {
  readonly #p: TwinQueriesParts;

  constructor(parts: TwinQueriesParts) {
    this.#p = parts;
  }

  /** The freshest record of a twin (memory, commit queue, store), or null if none exists. */
  async record(id: string): Promise<TwinRecord | null> {
    return existing(this.#fresh(id) ?? (await this.#p.snapshots.load(id)));
  }

  /**
   * The twin as the API shows it, or null if it does not exist. The hot read: a twin in memory
   * costs one resolved promise, not a chain of async calls.
   */
  get(id: string): Promise<TwinState | null> {
    const rec = this.#fresh(id);
    if (rec) return Promise.resolve(existing(rec)?.state ?? null);
    return this.record(id).then((r) => r?.state ?? null);
  }

  /** The record in memory or waiting for a commit, if any. */
  #fresh(id: string): TwinRecord | undefined {
    return this.#p.peek(id) ?? this.#p.queue.uncommitted(id);
  }

  /** A twin's commands (open and recent, oldest first), or null if it does not exist. */
  async commands(id: string): Promise<Command[] | null> {
    const rec = await this.record(id);
    return rec ? rec.commands ?? [] : null;
  }

  /** Status of a twin's rules (faults, pending timers), or null if it does not exist. */
  async ruleStatus(twin: string): Promise<RuleStatus[] | null> {
    const rec = await this.record(twin);
    return rec ? ruleStatus(rec.rules) : null;
  }

  /** What this node knows about a twin it hosts, or null if the twin does not exist. */
  async diagnostics(id: string): Promise<HostDiagnostics | null> {
    const p = this.#p;
    const rec = await this.record(id);
    if (!rec) return null;
    const stored = await p.snapshots.load(id);
    const info = p.actor(id);
    return {
      node: p.nodeId ?? "local",
      version: rec.state.version,
      connectivity: rec.state.connectivity,
      traffic: rec.traffic ?? null,
      actor: {
        resident: p.resident(id),
        mailboxDepth: info?.depth ?? 0,
        lastActive: info?.lastActive ?? null,
        timerAt: p.timers.at(id) ?? null,
      },
      snapshot: {
        persistedVersion: stored?.state.version ?? null,
        unpersisted: rec.state.version - (stored?.state.version ?? 0),
        savedAt: p.queue.savedAt(id) ?? null,
      },
      commands: (rec.commands ?? []).slice(-10),
      alarms: alarmsOf(rec).filter((a) => a.state !== "cleared"),
      rules: ruleStatus(rec.rules),
      quarantine: p.containment.view(id),
      refused: p.containment.refusals(id),
    };
  }

  /** Alarms of the twins in the snapshot store (fresher in-memory records win). */
  listAlarms(q: AlarmQuery): Promise<{ items: Alarm[]; next?: string }> {
    return listAlarms(this.#p.snapshots, q, (r) => this.#p.peek(r.state.id) ?? r);
  }

  /** A page of twins in id order whose attributes match `filter` (string comparison). */
  list(
    after: string | undefined,
    limit: number,
    filter: Record<string, string>,
  ): Promise<{ items: TwinState[]; next?: string }> {
    return listTwins(
      this.#p.snapshots,
      after,
      limit,
      filter,
      (s) => this.#p.peek(s.id)?.state ?? s,
    );
  }

  /** Every stored twin with a non-empty desired state (to republish retained downlinks). */
  async *withDesired(): AsyncIterable<TwinState> {
    for await (const r of storedRecords(this.#p.snapshots)) {
      if (Object.keys(r.state.desired).length > 0) yield r.state;
    }
  }
}
