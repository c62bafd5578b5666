/**
 * The twin actor's behavior in the host: load a twin, apply one message with the pure
 * `applyTwin`, then hand the change to the commit queue, its effects to the executor and its
 * next deadline to the rule timers. The host's own refusals (size limit, quarantine) are
 * decided here, before anything of a change is kept or done.
 * @module
 */
import { applyTwin } from "../../actors/twin_apply.ts";
import {
  compactRecord,
  emptyTwin,
  telemetryPoint,
  type TwinMessage,
  type TwinRecord,
  type TwinResult,
  type TwinState,
} from "../../actors/twin.ts";
import type { CompiledProfile } from "../../actors/rules/compile.ts";
import { DEFAULT_TWIN_MAX_BYTES, overSizeLimit } from "../../actors/twin_size.ts";
import type { Behavior } from "./actor_system.ts";
import type { Clock } from "./clock.ts";
import type { SnapshotStore } from "../persistence/port.ts";
import type { Metrics } from "../obs/metrics.ts";
import type { CommitQueue } from "./commit_queue.ts";
import type { Containment } from "./containment.ts";
import type { EffectExecutor } from "./effect_executor.ts";
import type { RuleTimers } from "./rule_timers.ts";
import type { HostRefusal } from "./quarantine.ts";
import { keepUnwritten, unwrittenOf } from "./unwritten_points.ts";
import type { FleetIndex } from "./fleet_index.ts";

/** The reply of a twin actor to one message. */
export type Reply = {
  state: TwinState;
  record: TwinRecord;
  error?: NonNullable<TwinResult["error"]> | HostRefusal;
  /** The twin's quarantine generation when the change was applied (see `TwinHost`). */
  gen: number;
  /** The change's number among the records handed to commits (0: nothing to store). */
  change?: number;
};

type Step = { state: TwinRecord; reply: Reply };

/** What a {@linkcode TwinBehavior} works with. */
export interface TwinBehaviorParts {
  clock: Clock;
  metrics: Metrics;
  snapshots: SnapshotStore;
  queue: CommitQueue;
  containment: Containment;
  effects: EffectExecutor;
  timers: RuleTimers;
  /** The compiled profile a twin uses, if any. */
  resolve?(state: TwinState, hasRuleState: boolean): CompiledProfile | undefined;
  /** Size limit of a twin's state in bytes. Default 256 KiB. */
  maxTwinBytes?: number;
  /** Counts of the twins by site and line (`GET /v1/fleet`), told of every applied change. */
  fleet?: FleetIndex;
}

/** The twin actor's load, receive and passivate. */
export class TwinBehavior implements Behavior<TwinRecord, TwinMessage, Reply> {
  readonly #p: TwinBehaviorParts;

  constructor(parts: TwinBehaviorParts) {
    this.#p = parts;
  }

  async load(id: string): Promise<TwinRecord> {
    const q = this.#p.containment.record(id);
    if (q) q.reset = false; // what is loaded now is the stored state
    return this.#p.queue.uncommitted(id) ?? (await this.#loadStored(id)) ??
      emptyTwin(id, this.#p.clock.now());
  }

  /** The stored record of twin `id`, compacted for residency (`compactRecord`), or null. */
  async #loadStored(id: string): Promise<TwinRecord | null> {
    const rec = await this.#p.snapshots.load(id);
    return rec && compactRecord(rec);
  }

  passivate(id: string): Promise<void> {
    return this.#p.queue.evict(id);
  }

  receive(id: string, rec: TwinRecord, msg: TwinMessage): Step | Promise<Step> {
    const q = this.#p.containment.record(id);
    if (!q) return this.#apply(id, rec, msg);
    if (!q.reset) return this.#quarantined(id, rec, msg);
    // the resident state is the one that could not be stored: start again from the store
    return this.#loadStored(id).then((stored) => {
      q.reset = false;
      return this.#quarantined(id, stored ?? emptyTwin(id, this.#p.clock.now()), msg);
    });
  }

  /** A message to a twin with a quarantine record: refused while it lasts, else applied. */
  #quarantined(id: string, rec: TwinRecord, msg: TwinMessage): Step {
    const error = this.#p.containment.refusal(id);
    if (error) {
      const gen = this.#p.containment.gen(id);
      return { state: rec, reply: { state: rec.state, record: rec, error, gen } };
    }
    return this.#apply(id, rec, msg); // the quarantine is over (its record stays, for diagnostics)
  }

  #apply(id: string, rec: TwinRecord, msg: TwinMessage): Step {
    const p = this.#p;
    const gen = p.containment.gen(id);
    const profile = p.resolve?.(rec.state, rec.rules !== undefined);
    const now = p.clock.now();
    const res = applyTwin(rec, msg, now, profile);
    // device messages come from the inbound log: their sequence is the log entry to retire
    const seq = msg.type === "device" ? msg.seq : undefined;
    if (res.duplicate && res.resend) {
      // a device's resend: its sequence is consumed, nothing else changes
      const change = p.queue.change(id, res.record, seq);
      return {
        state: res.record,
        reply: { state: res.record.state, record: res.record, gen, change },
      };
    }
    if (res.duplicate) {
      // Already applied before a restart; its point may not have been written: write it again
      // (InfluxDB overwrites a point with the same series and timestamp).
      if (msg.type === "device" && msg.body.kind === "telemetry") {
        const { body, at, props } = msg;
        const tags = profile?.tags;
        p.effects.point(seq, telemetryPoint(rec.state, body, at, msg.seq, props, tags));
      }
      // and the rule points it made (alarms, rollups), kept until its entry is retired
      if (msg.type === "device") {
        for (const pt of unwrittenOf(rec, msg.seq)) p.effects.point(seq, pt);
      }
      return { state: rec, reply: { state: rec.state, record: rec, gen } };
    }
    if (res.error) {
      return { state: rec, reply: { state: rec.state, record: rec, error: res.error, gen } };
    }
    if (res.record.state !== rec.state) {
      // the size limit: checked before anything of the change is kept or done
      const limit = p.maxTwinBytes ?? DEFAULT_TWIN_MAX_BYTES;
      const size = overSizeLimit(rec.state, res.record.state, limit);
      if (size !== null) {
        const error: HostRefusal = { code: "twin_too_large", size, limit };
        return { state: rec, reply: { state: rec.state, record: rec, error, gen } };
      }
    }
    const record = seq === undefined || res.record === rec
      ? res.record
      : keepUnwritten(res.record, rec.unwritten, seq, res.effects, (s) => p.queue.unretired(s));
    const change = record !== rec ? p.queue.change(id, record, seq) : 0;
    if (msg.type === "tick") p.metrics.ruleTicks.inc();
    if (res.suppressed) p.metrics.fieldsSuppressed.inc(res.suppressed);
    if (record.state !== rec.state) p.fleet?.apply(id, record.state, seq !== undefined, now);
    p.effects.run(id, res.effects, seq);
    p.timers.arm(id, profile, record);
    return {
      state: record,
      reply: { state: record.state, record, gen, change },
    };
  }
}
