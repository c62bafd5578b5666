/**
 * The twin host: twin actors on the actor runtime, wired to persistence, the durable inbound
 * log, the InfluxDB writer, the event transport and the device downlink.
 *
 * Durability: an inbound entry is retired from the log only when the snapshot that includes it
 * is persisted and its telemetry point is written (when InfluxDB is configured). Dirty twins
 * are group-committed every few milliseconds; HTTP changes reply after their commit.
 * @module
 */
import { ActorSystem } from "./actor_system.ts";
import { type Clock, systemClock } from "./clock.ts";
import {
  applyTwin,
  emptyTwin,
  pointSubMs,
  telemetryPoint,
  type TwinEffect,
  type TwinMessage,
  type TwinRecord,
  type TwinResult,
  type TwinState,
} from "../../actors/twin.ts";
import type { CompiledProfile } from "../../actors/rules/compile.ts";
import { nextDeadline } from "../../actors/rules/engine.ts";
import { type Alarm, parseAlarmId } from "../../actors/rules/alarm.ts";
import { type RuleStatus, ruleStatus } from "../../actors/rules/state.ts";
import { alarmsOf } from "../../actors/twin_rules.ts";
import type { AlarmQuery } from "../rules/service.ts";
import type { JsonObject } from "../../actors/json.ts";
import { parseDeviceBody, parseDeviceTopic } from "../../actors/validate.ts";
import { DEFAULT_JSON_LIMITS, type JsonLimits } from "../../actors/json_intake.ts";
import { DEFAULT_TWIN_MAX_BYTES, overSizeLimit } from "../../actors/twin_size.ts";
import type { Accepted } from "../bridges/ingest.ts";
import type { LogEntry, Persistence } from "../persistence/port.ts";
import type { Transport } from "../transport/port.ts";
import { subjects } from "../transport/subjects.ts";
import type { Logger } from "../obs/log.ts";
import type { Metrics } from "../obs/metrics.ts";
import {
  AlarmNotFoundError,
  CommandQueueFullError,
  TwinmillError,
  TwinNotFoundError,
  TwinQuarantinedError,
  TwinTooLargeError,
  VersionConflictError,
} from "../errors.ts";
import type { TwinService } from "./twin_service.ts";
import {
  type HostRefusal,
  KEEP_REFUSALS,
  MAX_QUARANTINES,
  MAX_REFUSING_TWINS,
  MAX_SAVE_ATTEMPTS,
  pushBounded,
  type Quarantine,
  type QuarantineRecord,
  quarantineView,
  retryDelay,
  setBounded,
  type TwinRefusal,
  unstorable,
} from "./quarantine.ts";

export type { Quarantine, TwinRefusal } from "./quarantine.ts";
import { listAlarms, listTwins } from "./list_twins.ts";
import { type Command, isOpen, newCommand, nextExpiry } from "../../actors/commands.ts";

/** A point as the InfluxDB writer takes it. */
export interface PointSink {
  write(p: {
    measurement: string;
    tags: Record<string, string>;
    fields: Record<string, number | boolean | string>;
    ts: number;
    /** Nanoseconds within the millisecond `ts` (see `Point.subMs`). */
    subMs?: number;
  }): Promise<void>;
  readonly full: boolean;
}

/** Options of {@linkcode TwinHost}. */
export interface TwinHostOptions {
  persistence: Persistence;
  transport: Transport;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  points?: PointSink;
  /** Publish a twin's full desired state to its device (retained). */
  downlink?(id: string, desired: JsonObject): void;
  idleMs?: number;
  /** Unretired inbound entries above which ingest is held back. */
  maxPending?: number;
  /**
   * False for twins this node may no longer persist (cluster: the shard's lease is lost);
   * their changes are dropped, not committed, and their log entries are not retired.
   */
  mayPersist?(id: string): boolean;
  /** Name of the durable log device messages come from (the twin dedupes per source). */
  source?: string;
  /** Delay of the snapshot group commit (ms). Default 5. */
  flushDelayMs?: number;
  /** Device profiles: the compiled profile a twin uses (see `src/rules/profiles.ts`). */
  profiles?: {
    resolve(state: TwinState, hasRuleState: boolean): CompiledProfile | undefined;
    /** A rule of the profile `state` uses failed. */
    faulted?(state: TwinState, rule: string, message: string): void;
  };
  /** Where rule webhooks go. */
  webhooks?: {
    send(req: { url: string; headers?: Record<string, string>; body: unknown }): boolean;
  };
  /**
   * False for twins whose timers this node must not run (cluster: another node owns the
   * shard); they stay armed and are checked again later.
   */
  owns?(id: string): boolean;
  /** How often due rule timers are checked (ms). Default 1000. */
  timerEveryMs?: number;
  /**
   * Hand commands to a twin's device: resolves with the ids handed to a live MQTT session of
   * it (none when the device is not listening; they stay queued).
   */
  commands?: { deliver(twin: string, commands: Command[]): Promise<string[]> };
  /** Commands a rule action sends expire after this long (ms). Default 1 hour. */
  ruleCommandTtlMs?: number;
  /** This node's name (diagnostics). */
  nodeId?: string;
  /** Size limit of a twin's state in bytes (see `actors/twin_size.ts`). Default 256 KiB. */
  maxTwinBytes?: number;
  /** Limits of the JSON intake, for device messages read back from the durable log. */
  jsonLimits?: JsonLimits;
  /** How long a twin whose snapshot cannot be stored takes no changes (ms). Default 60 s. */
  quarantineMs?: number;
}

/** What the node hosting a twin knows about it (see `GET /v1/twins/{id}/diagnostics`). */
export interface HostDiagnostics {
  /** The node hosting the twin. */
  node: string;
  version: number;
  connectivity: TwinState["connectivity"];
  traffic: TwinRecord["traffic"] | null;
  actor: {
    resident: boolean;
    mailboxDepth: number;
    /** Last message handled (ms), while resident. */
    lastActive: number | null;
    /** When its rules or commands next need a tick (ms), if armed. */
    timerAt: number | null;
  };
  snapshot: {
    /** Version in the snapshot store. */
    persistedVersion: number | null;
    /** Changes not yet committed. */
    unpersisted: number;
    /** Last commit of its snapshot by this node (ms), while resident. */
    savedAt: number | null;
  };
  commands: Command[];
  alarms: Alarm[];
  rules: RuleStatus[];
  /** The twin's last quarantine on this node (`active` while it lasts), or null. */
  quarantine: (Quarantine & { active: boolean }) | null;
  /** Device messages the twin refused lately (size limit, quarantine), oldest first. */
  refused: TwinRefusal[];
}

type Reply = {
  state: TwinState;
  record: TwinRecord;
  error?: NonNullable<TwinResult["error"]> | HostRefusal;
  /** The twin's quarantine generation when the change was applied (see `#commit`). */
  gen: number;
  /** The change's number among the records handed to commits (0: nothing to store). */
  change?: number;
};

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

/** A twin as the API shows it. */
export type TwinView = TwinState & { alarms: unknown[] };

/** Hosts every twin of this node. */
export class TwinHost implements TwinService {
  readonly #o: TwinHostOptions;
  readonly #sys: ActorSystem<TwinRecord, TwinMessage, Reply>;
  readonly #log: Logger;
  /** Unretired entry seq -> outstanding needs (snapshot, point, processing guard). */
  readonly #needs = new Map<number, number>();
  /**
   * Entries of fenced twins: their state was dropped unpersisted, so they must never be
   * retired by this node (the next owner gets them again). Cleared when re-dispatched.
   */
  readonly #fenced = new Set<number>();
  /** Retired seqs waiting to be deleted from the log. */
  #retire: number[] = [];
  /** Latest record of each changed twin not yet handed to a commit. */
  #dirty = new Map<string, TwinRecord>();
  /** Entry seqs applied to each dirty twin since its last commit. */
  #dirtySeqs = new Map<string, number[]>();
  /** Records being committed right now. */
  #committing = new Map<string, TwinRecord>();
  #flushTimer: unknown;
  #flushing: Promise<void> | null = null;
  #waiters: Array<() => void> = [];
  #closed = false;
  /** Sub-ms part of alarm points not caused by a device message (ticks, acks, profiles). */
  #alarmSeq = 0;
  /** Twins quarantined on this node (their last quarantine), by id. */
  readonly #quarantine = new Map<string, QuarantineRecord>();
  /** Quarantines per twin so far: a change applied in an older generation was dropped. */
  readonly #gen = new Map<string, number>();
  /** Device messages each twin refused lately (diagnostics). */
  readonly #refused = new Map<string, TwinRefusal[]>();
  /** Log lines keyed by twin and kind: at most one per key per minute. */
  readonly #lastLogged = new Map<string, number>();
  /** Change numbers: of each record handed to a commit, and the last stored per twin. */
  #changes = 0;
  readonly #changeOf = new WeakMap<TwinRecord, number>();
  readonly #savedChange = new Map<string, number>();
  /** Rounds in a row each twin failed to be stored while others were. */
  readonly #failures = new Map<string, number>();
  /** Consecutive commits that failed for the whole store (retry backoff). */
  #storeFailures = 0;
  /** When the last "cannot persist" line was logged (ms). */
  #storeLoggedAt = 0;

  constructor(o: TwinHostOptions) {
    this.#o = o;
    this.#log = o.logger;
    const m = o.metrics;
    this.#sys = new ActorSystem<TwinRecord, TwinMessage, Reply>({
      clock: o.clock,
      logger: o.logger,
      idleMs: o.idleMs,
      hooks: {
        activated: () => (m.activations.inc(), m.twinsActive.inc()),
        passivated: () => (m.passivations.inc(), m.twinsActive.dec()),
        failed: () => m.handlerFailures.inc(),
        mailboxFull: () => m.mailboxFull.inc(),
      },
      behavior: {
        load: (id) => this.#load(id),
        receive: (id, rec, msg) => this.#receive(id, rec, msg),
        passivate: (id) => this.#passivate(id),
      },
    });
  }

  /** Unretired inbound entries. */
  get pending(): number {
    return this.#needs.size;
  }

  /** Messages waiting in twin mailboxes. */
  get mailboxDepth(): number {
    return this.#sys.queued;
  }

  /** Resident twin actors. */
  get resident(): number {
    return this.#sys.size;
  }

  /** False while ingest must hold back (too many unretired entries, or InfluxDB buffer full). */
  canAccept(): boolean {
    return this.#needs.size < (this.#o.maxPending ?? 100_000) && !this.#o.points?.full;
  }

  async #load(id: string): Promise<TwinRecord> {
    const q = this.#quarantine.get(id);
    if (q) q.reset = false; // what is loaded now is the stored state
    return this.#dirty.get(id) ?? this.#committing.get(id) ??
      (await this.#o.persistence.snapshots.load(id)) ?? emptyTwin(id, this.#o.clock.now());
  }

  /**
   * A resident twin's in-memory record, unless it is quarantined and still holds the state
   * that could not be stored (then readers go to the store).
   */
  #peek(id: string): TwinRecord | undefined {
    return this.#quarantine.get(id)?.reset ? undefined : this.#sys.peek(id);
  }

  async #passivate(id: string): Promise<void> {
    while (this.#dirty.has(id) || this.#committing.has(id)) await this.flush();
    this.#savedAt.delete(id);
    this.#savedChange.delete(id);
  }

  /** When each resident twin's snapshot was last committed (ms); bounded by residency. */
  readonly #savedAt = new Map<string, number>();

  #receive(
    id: string,
    rec: TwinRecord,
    msg: TwinMessage,
  ): { state: TwinRecord; reply: Reply } | Promise<{ state: TwinRecord; reply: Reply }> {
    const q = this.#quarantine.get(id);
    if (!q) return this.#apply(id, rec, msg);
    if (!q.reset) return this.#quarantined(id, rec, msg);
    // the resident state is the one that could not be stored: start again from the store
    return this.#o.persistence.snapshots.load(id).then((stored) => {
      q.reset = false;
      return this.#quarantined(id, stored ?? emptyTwin(id, this.#o.clock.now()), msg);
    });
  }

  /** A message to a twin with a quarantine record: refused while it lasts, else applied. */
  #quarantined(id: string, rec: TwinRecord, msg: TwinMessage): { state: TwinRecord; reply: Reply } {
    const q = this.#quarantine.get(id);
    const gen = this.#gen.get(id) ?? 0;
    if (q && this.#o.clock.now() < q.until) {
      const error: HostRefusal = { code: "twin_quarantined", reason: q.reason, until: q.until };
      return { state: rec, reply: { state: rec.state, record: rec, error, gen } };
    }
    return this.#apply(id, rec, msg); // the quarantine is over (its record stays, for diagnostics)
  }

  #apply(id: string, rec: TwinRecord, msg: TwinMessage): { state: TwinRecord; reply: Reply } {
    const now = this.#o.clock.now();
    const gen = this.#gen.get(id) ?? 0;
    const profile = this.#o.profiles?.resolve(rec.state, rec.rules !== undefined);
    const res = applyTwin(rec, msg, now, profile);
    // device messages come from the inbound log: their sequence is the log entry to retire
    const seq = msg.type === "device" ? msg.seq : undefined;
    if (res.duplicate && res.resend) {
      // a device's resend: its sequence is consumed, nothing else changes
      const change = this.#markDirty(id, res.record);
      if (seq !== undefined) this.#track(id, seq);
      this.#scheduleFlush();
      return {
        state: res.record,
        reply: { state: res.record.state, record: res.record, gen, change },
      };
    }
    if (res.duplicate) {
      // Already applied before a restart; its point may not have been written: write it again
      // (InfluxDB overwrites a point with the same series and timestamp).
      if (msg.type === "device" && msg.body.kind === "telemetry") {
        this.#emitPoint(seq, telemetryPoint(rec.state, msg.body, msg.at, msg.seq));
      }
      return { state: rec, reply: { state: rec.state, record: rec, gen } };
    }
    if (res.error) {
      return { state: rec, reply: { state: rec.state, record: rec, error: res.error, gen } };
    }
    if (res.record.state !== rec.state) {
      // the size limit: checked before anything of the change is kept or done
      const limit = this.#o.maxTwinBytes ?? DEFAULT_TWIN_MAX_BYTES;
      const size = overSizeLimit(rec.state, res.record.state, limit);
      if (size !== null) {
        const error: HostRefusal = { code: "twin_too_large", size, limit };
        return { state: rec, reply: { state: rec.state, record: rec, error, gen } };
      }
    }
    let change = 0;
    if (res.record !== rec) {
      change = this.#markDirty(id, res.record);
      if (seq !== undefined) this.#track(id, seq);
      this.#scheduleFlush();
    }
    if (msg.type === "tick") this.#o.metrics.ruleTicks.inc();
    if (res.suppressed) this.#o.metrics.fieldsSuppressed.inc(res.suppressed);
    const version = res.record.state.version;
    for (const e of res.effects) {
      // an effect that throws (a downlink that cannot be serialized, a transport that fails)
      // is contained here: the change stands, the other effects and the node go on
      try {
        this.#effect(id, e, seq, version);
      } catch (err) {
        this.#effectFailed(id, e.type, err);
      }
    }
    this.#arm(id, profile, res.record);
    return {
      state: res.record,
      reply: { state: res.record.state, record: res.record, gen, change },
    };
  }

  /** Hand a twin's new record to the next commit; returns its change number. */
  #markDirty(id: string, rec: TwinRecord): number {
    const n = ++this.#changes;
    this.#changeOf.set(rec, n);
    this.#dirty.set(id, rec);
    return n;
  }

  /** An effect of twin `id` threw: counted, logged once per twin and kind per minute. */
  #effectFailed(id: string, type: string, err: unknown): void {
    this.#o.metrics.effectFailures.inc({ type });
    if (this.#oncePerMinute(`effect\u0000${type}\u0000${id}`)) {
      this.#log.error("effect of a twin change failed; the change stands", { twin: id, type, err });
    }
  }

  /** True at most once per `key` per minute (bounded in keys). */
  #oncePerMinute(key: string): boolean {
    const now = this.#o.clock.now();
    if ((this.#lastLogged.get(key) ?? -Infinity) + 60_000 > now) return false;
    if (this.#lastLogged.size > 10_000) this.#lastLogged.clear();
    this.#lastLogged.set(key, now);
    return true;
  }

  /** Twin id -> when its rules next need a tick (ms). */
  readonly #armed = new Map<string, number>();
  #timer?: unknown;

  #arm(id: string, profile: CompiledProfile | undefined, rec: TwinRecord): void {
    const rules = profile ? nextDeadline(profile, rec.rules) : null;
    const cmds = nextExpiry(rec.commands);
    const at = rules === null ? cmds : cmds === null ? rules : Math.min(rules, cmds);
    if (at === null) this.#armed.delete(id);
    else this.#armed.set(id, at);
    if (at !== null) this.#startTimer();
  }

  /** The timer that ticks due twins; started once, on the first armed twin. */
  #startTimer(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = this.#o.clock.setInterval(() => this.#tickDue(), this.#o.timerEveryMs ?? 1000);
  }

  /** Every persisted twin record, in id order, a page at a time (start-up and rare scans). */
  async *#stored(): AsyncIterable<TwinRecord> {
    let after: string | undefined;
    for (;;) {
      const page = await this.#o.persistence.snapshots.list(after, 500);
      if (page.length === 0) return;
      yield* page;
      after = page[page.length - 1].state.id;
    }
  }

  /** Send a tick to every twin whose rule timer is due (activating it if passivated). */
  #tickDue(): void {
    const now = this.#o.clock.now();
    for (const [id, at] of this.#armed) {
      if (at > now || !(this.#o.owns?.(id) ?? true)) continue;
      this.#armed.delete(id);
      this.#sys.send(id, { type: "tick" }).then((r) => {
        // a quarantined twin's timers wait for the end of its quarantine
        if (r.error?.code === "twin_quarantined") this.#armed.set(id, r.error.until);
      }, (err) => {
        this.#armed.set(id, now + 5_000); // try again soon
        this.#log.warn("rule timer tick failed", { twin: id, err });
      });
    }
  }

  /** Twins with rule timers armed (for tests and metrics). */
  get armed(): number {
    return this.#armed.size;
  }

  /**
   * Arm the rule timers of stored twins (after a start, or after acquiring shards): every
   * stored twin with rule state or a profile; `want` limits it (cluster: owned shards).
   */
  async armStored(want: (id: string) => boolean = () => true): Promise<number> {
    const profiles = this.#o.profiles;
    let n = 0;
    for await (const r of this.#stored()) {
      const id = r.state.id;
      if (!want(id) || this.#armed.has(id) || this.#peek(id)) continue;
      const p = profiles?.resolve(r.state, r.rules !== undefined);
      if (!p && !r.commands?.some(isOpen)) continue;
      this.#arm(id, p, r);
      if (this.#armed.has(id)) n++;
    }
    return n;
  }

  /**
   * A profile changed: every resident twin and every armed twin using it gets a tick soon,
   * which reconciles its rules with the new profile (alarms of removed rules clear).
   */
  async reprofile(matches: (state: TwinState) => boolean): Promise<number> {
    let n = 0;
    const soon = (id: string) => {
      this.#armed.set(id, 0);
      n++;
    };
    for (const id of this.#sys.ids()) {
      const rec = this.#peek(id);
      if (rec && (matches(rec.state) || rec.rules !== undefined)) soon(id);
    }
    for (const id of this.#armed.keys()) this.#armed.set(id, 0);
    this.#startTimer();
    // stored twins using the profile that are not in memory (a scan: profile changes are rare)
    const mine = this.#o.owns ?? (() => true);
    for await (const r of this.#stored()) {
      const id = r.state.id;
      if (!this.#armed.has(id) && mine(id) && (matches(r.state) || r.rules !== undefined)) {
        soon(id);
      }
    }
    return n;
  }

  /** The entry `seq` is retired only once the snapshot of twin `id` holding it is committed. */
  #track(id: string, seq: number): void {
    this.#needs.set(seq, (this.#needs.get(seq) ?? 0) + 1);
    const l = this.#dirtySeqs.get(id);
    if (l) l.push(seq);
    else this.#dirtySeqs.set(id, [seq]);
  }

  #emitPoint(seq: number | undefined, e: Extract<TwinEffect, { type: "point" }>): void {
    const sink = this.#o.points;
    if (!sink) return;
    if (seq !== undefined) this.#needs.set(seq, (this.#needs.get(seq) ?? 0) + 1);
    void sink.write({
      measurement: e.measurement ?? "telemetry",
      tags: e.tags,
      fields: e.fields,
      ts: e.ts,
      subMs: e.subMs,
    }).then(
      () => seq !== undefined && this.#done(seq),
      // not retired: the entry is applied again (and its point written) after a restart
      (err) => this.#effectFailed(e.tags.device ?? "", "point", err),
    );
  }

  /** Runs effect `e` of twin `id`; `version` is the twin's version after the change. */
  #effect(id: string, e: TwinEffect, seq: number | undefined, version: number): void {
    const m = this.#o.metrics;
    switch (e.type) {
      case "point":
        this.#emitPoint(seq, e);
        break;
      case "event":
        this.#o.transport.publish(subjects.event(e.event.type, id), e.event);
        if (e.event.type === "command") {
          const status = e.event.data.status as string;
          if (status !== "pending" && status !== "delivered") m.commands.inc({ status });
        }
        break;
      case "desired":
        this.#o.downlink?.(id, e.desired);
        break;
      case "alarm": {
        const a = e.alarm;
        m.alarmTransitions.inc({ change: e.change, severity: a.severity });
        this.#log.info(`alarm ${e.change}`, {
          twin: id,
          rule: a.rule,
          alarm: a.id,
          severity: a.severity,
          state: a.state,
        });
        const fields: Record<string, number | boolean | string> = {
          state: a.state,
          acknowledged: a.acknowledged,
          raiseCount: a.raiseCount,
        };
        if (a.value !== null) fields.value = a.value;
        this.#emitPoint(seq, {
          type: "point",
          measurement: "alarms",
          tags: { device: id, rule: a.rule, severity: a.severity },
          fields,
          ts: a.updatedAt,
          // one point per transition: two in one millisecond differ below it
          subMs: pointSubMs(seq ?? this.#alarmSeq++),
        });
        // the version after the message that made the transition (read your own writes)
        this.#o.transport.publish(subjects.event("alarm", id), {
          type: "alarm",
          twin: id,
          version,
          ts: a.updatedAt,
          data: { change: e.change, ...a },
        });
        break;
      }
      case "webhook": {
        m.ruleActions.inc({ type: "webhook" });
        const queued = this.#o.webhooks?.send({ url: e.url, headers: e.headers, body: e.body });
        if (!queued) m.webhooks.inc({ outcome: "dropped" });
        break;
      }
      case "command": {
        // a rule's command action: queued like an API command (async)
        m.ruleActions.inc({ type: "command" });
        const now = this.#o.clock.now();
        const command = newCommand({
          name: e.name,
          args: e.args,
          mode: "async",
          source: `rule:${e.rule}`,
          now,
          ttlMs: this.#o.ruleCommandTtlMs ?? 3_600_000,
        });
        this.#sys.send(id, { type: "command", command }).then((r) => {
          if (r.error) {
            this.#log.warn("rule command not queued", { twin: id, rule: e.rule, ...r.error });
          }
        }, (err) => this.#log.warn("rule command not queued", { twin: id, rule: e.rule, err }));
        break;
      }
      case "deliver":
        this.#deliver(id, e.commands);
        break;
      case "fault":
        m.ruleFaults.inc();
        this.#o.profiles?.faulted?.(
          this.#peek(id)?.state ?? emptyTwin(id, 0).state,
          e.rule,
          e.message,
        );
        if (e.count === 1) {
          this.#log.warn("rule faulted", { twin: id, rule: e.rule, message: e.message });
        }
        break;
    }
  }

  /** Hand commands to the device; mark the ones that reached a live session delivered. */
  #deliver(id: string, commands: Command[]): void {
    const link = this.#o.commands;
    if (!link) return;
    link.deliver(id, commands).then((ids) => {
      if (ids.length === 0) return;
      this.#o.metrics.commands.inc({ status: "delivered" }, ids.length);
      return this.#sys.send(id, { type: "commands_delivered", ids, at: this.#o.clock.now() });
    }).catch((err) =>
      this.#log.warn("commands not delivered; they stay queued", { twin: id, err })
    );
  }

  #done(seq: number): void {
    if (this.#fenced.has(seq)) return;
    const n = (this.#needs.get(seq) ?? 0) - 1;
    if (n > 0) {
      this.#needs.set(seq, n);
      return;
    }
    this.#needs.delete(seq);
    this.#retire.push(seq);
    this.#o.metrics.inboundPending.set(this.#needs.size);
    this.#scheduleFlush();
  }

  /** Deliver durable inbound messages to their twins, in order. */
  dispatch(batch: Accepted[]): void {
    for (const a of batch) {
      const seq = a.entry.seq;
      this.#fenced.delete(seq); // a new delivery starts clean
      this.#needs.set(seq, 1); // processing guard, released once delivered
      const msg: TwinMessage = {
        type: "device",
        source: this.#o.source ?? "mqtt",
        seq,
        at: a.entry.at,
        body: a.body,
        key: a.key,
      };
      this.#sys.send(a.topic.twin, msg, { wait: true }).then(
        (r) => {
          if (r.error?.code === "twin_too_large" || r.error?.code === "twin_quarantined") {
            this.#refuse(a.topic.twin, a.entry.topic, r.error);
          }
          this.#done(seq);
        },
        (err) => {
          if (err instanceof TwinmillError && err.code === "shard_moved") {
            this.#forget(seq); // not applied here: the shard's next owner applies it
            return;
          }
          this.#log.error("inbound message could not be applied; retired as failed", {
            twin: a.topic.twin,
            seq,
            err,
          });
          this.#done(seq);
        },
      );
    }
    this.#o.metrics.inboundPending.set(this.#needs.size);
  }

  /** A device message the twin refused: counted with the broker's rejections, logged, kept. */
  #refuse(twin: string, topic: string, error: HostRefusal): void {
    this.#o.metrics.messagesRejected.inc({ reason: error.code });
    const refusal = { at: this.#o.clock.now(), reason: error.code, topic: topic.slice(0, 200) };
    pushBounded(this.#refused, twin, refusal, KEEP_REFUSALS, MAX_REFUSING_TWINS);
    if (this.#oncePerMinute(`refused\u0000${twin}`)) {
      this.#log.warn("device message refused by its twin", {
        device: twin,
        topic: topic.slice(0, 200),
        reason: error.code,
        ...(error.code === "twin_too_large"
          ? { size: error.size, limit: error.limit }
          : { until: new Date(error.until).toISOString() }),
      });
    }
  }

  /** Re-deliver every unretired log entry (after a restart). Returns how many. */
  async replay(): Promise<number> {
    let n = 0;
    let batch: Accepted[] = [];
    const decode = (e: LogEntry): Accepted | null => {
      const t = parseDeviceTopic(e.topic);
      if (typeof t === "string") return null;
      const body = parseDeviceBody(t, e.payload, this.#o.jsonLimits ?? DEFAULT_JSON_LIMITS);
      return typeof body === "string" ? null : { entry: e, topic: t, body };
    };
    for await (const e of this.#o.persistence.log.replay()) {
      const a = decode(e);
      if (!a) {
        this.#retire.push(e.seq);
        continue;
      }
      batch.push(a);
      n++;
      if (batch.length >= 1000) {
        this.dispatch(batch);
        batch = [];
      }
    }
    this.dispatch(batch);
    return n;
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
        const batch = this.#dirty;
        const seqs = this.#dirtySeqs;
        this.#dirty = new Map();
        this.#dirtySeqs = new Map();
        this.#fence(batch, seqs);
        this.#committing = batch;
        let storeDown = false;
        if (batch.size > 0) {
          const { failed, all } = await this.#save(batch);
          this.#committing = new Map();
          for (const [id, l] of seqs) {
            if (failed.has(id)) continue;
            this.#failures.delete(id);
            for (const s of l) this.#done(s);
          }
          for (const [id, err] of failed) {
            const rec = batch.get(id)!;
            // a twin is blamed only when others were stored in the same round
            const n = all ? (this.#failures.get(id) ?? 0) : (this.#failures.get(id) ?? 0) + 1;
            if (unstorable(rec, err) || n >= MAX_SAVE_ATTEMPTS) {
              this.#failures.delete(id);
              this.#quarantineTwin(id, rec, seqs.get(id) ?? [], err);
              continue;
            }
            this.#failures.set(id, n);
            // kept (a newer record of it may be waiting already) and tried again
            if (!this.#dirty.has(id)) this.#dirty.set(id, rec);
            this.#dirtySeqs.set(id, [...seqs.get(id) ?? [], ...(this.#dirtySeqs.get(id) ?? [])]);
            if (all) storeDown = true;
          }
          if (storeDown) {
            this.#storeFailed(
              "cannot persist twin snapshots",
              failed.size,
              failed.values().next().value,
            );
          }
        }
        const retire = this.#retire.splice(0);
        if (retire.length > 0) {
          try {
            await this.#o.persistence.log.retire(retire);
          } catch (err) {
            storeDown = true;
            this.#retire.push(...retire);
            this.#storeFailed("cannot retire inbound log entries", retire.length, err);
          }
        }
        if (storeDown) {
          // the store fails for every twin (down, full, ...): nothing is dropped, commits
          // wait and retry, backing off; acknowledgements stay held meanwhile
          this.#waiters.unshift(...waiters);
          await new Promise((r) => setTimeout(r, retryDelay(this.#storeFailures)));
          continue;
        }
        if (this.#storeFailures > 0) {
          this.#log.info("the snapshot store takes commits again", {
            failedCommits: this.#storeFailures,
          });
          this.#storeFailures = 0;
        }
        for (const w of waiters) w();
        if (this.#closed && this.#dirty.size === 0) break;
        if (this.#waiters.length === 0) break;
      }
    } finally {
      this.#flushing = null;
      if (this.#dirty.size > 0 || this.#retire.length > 0) this.#scheduleFlush();
    }
  }

  /**
   * Store a commit batch. When the store refuses the batch, each twin is tried on its own, so
   * one twin that cannot be stored does not hold back the others. Returns the twins not
   * stored with their errors, and `all` when none was stored (then the store, not a twin, is
   * the likely problem).
   */
  async #save(batch: Map<string, TwinRecord>): Promise<{
    failed: Map<string, unknown>;
    all: boolean;
  }> {
    const store = this.#o.persistence.snapshots;
    const failed = new Map<string, unknown>();
    const stored = (ids: Iterable<string>) => {
      let n = 0;
      const at = this.#o.clock.now();
      for (const id of ids) {
        n++;
        if (this.#sys.peek(id)) this.#savedAt.set(id, at);
        const change = this.#changeOf.get(batch.get(id)!);
        if (change !== undefined) this.#savedChange.set(id, change);
      }
      this.#o.metrics.snapshotsWritten.inc(n);
    };
    try {
      await store.saveMany([...batch.values()]);
      stored(batch.keys());
      return { failed, all: false };
    } catch (err) {
      if (batch.size === 1) {
        failed.set(batch.keys().next().value!, err);
        return { failed, all: true };
      }
    }
    const results = await Promise.all(
      [...batch].map(([id, r]) =>
        store.saveMany([r]).then(() => null, (err: unknown) => [id, err] as const)
      ),
    );
    for (const x of results) if (x) failed.set(x[0], x[1]);
    stored([...batch.keys()].filter((id) => !failed.has(id)));
    return { failed, all: failed.size === batch.size };
  }

  /** The store failed for every twin: log it (the first time, then every 30 s), back off. */
  #storeFailed(what: string, count: number, err: unknown): void {
    this.#storeFailures++;
    const now = this.#o.clock.now();
    if (this.#storeFailures === 1 || now - this.#storeLoggedAt >= 30_000) {
      this.#storeLoggedAt = now;
      this.#log.error(`${what}; will retry`, { count, failures: this.#storeFailures, err });
    }
  }

  /**
   * The snapshot of twin `id` cannot be stored: drop its unsaved changes (their log entries
   * are retired, counted as lost), serve it from the store again, and refuse changes to it
   * for the quarantine time. The rest of the node goes on.
   */
  #quarantineTwin(id: string, rec: TwinRecord, seqs: number[], err: unknown): void {
    const now = this.#o.clock.now();
    // changes applied on top of it since the commit began are lost with it
    const later = this.#dirtySeqs.get(id) ?? [];
    const dropped = this.#dirty.get(id) ?? rec;
    this.#dirty.delete(id);
    this.#dirtySeqs.delete(id);
    const lost = [...seqs, ...later];
    const reason = err instanceof Error ? err.message : String(err);
    const until = now + (this.#o.quarantineMs ?? 60_000);
    this.#gen.set(id, (this.#gen.get(id) ?? 0) + 1);
    const q: QuarantineRecord = {
      since: now,
      until,
      reason: reason.slice(0, 500),
      droppedVersion: dropped.state.version,
      droppedMessages: lost.length,
      reset: this.#sys.peek(id) !== undefined,
    };
    setBounded(this.#quarantine, id, q, MAX_QUARANTINES);
    this.#o.metrics.twinsQuarantined.inc();
    this.#log.error(
      "twin quarantined: its snapshot cannot be stored; its unsaved changes are dropped",
      {
        twin: id,
        version: dropped.state.version,
        droppedMessages: lost.length,
        until: new Date(until).toISOString(),
        err,
      },
    );
    // their entries are retired: applied again they would only fail again
    for (const s of lost) this.#done(s);
  }
  /** The twin as the API shows it, or null if it does not exist. */
  async get(id: string): Promise<TwinState | null> {
    return (await this.#record(id))?.state ?? null;
  }

  /**
   * Resolve once the change of reply `r` to twin `id` is durable. Throws when the host refused
   * it (size limit, quarantine), or when the twin was quarantined before it could be stored:
   * a change is never acknowledged and then lost.
   */
  async #commit(id: string, r: Reply): Promise<void> {
    this.#refusal(id, r);
    for (;;) {
      await this.flush();
      if ((this.#gen.get(id) ?? 0) !== r.gen) {
        const q = this.#quarantine.get(id)!;
        throw new TwinQuarantinedError(id, q.reason, q.until, true);
      }
      // stored (a later record of the twin holds it too), or nothing of the twin is pending
      // any more; else the store failed for it and retries
      const pending = this.#dirty.has(id) || this.#committing.has(id);
      if (!pending || (this.#savedChange.get(id) ?? 0) >= (r.change ?? 0)) return;
    }
  }

  /** Throw the error of a change the host refused. */
  #refusal(id: string, r: Reply): void {
    if (r.error?.code === "twin_too_large") {
      throw new TwinTooLargeError(id, r.error.size, r.error.limit);
    }
    if (r.error?.code === "twin_quarantined") {
      throw new TwinQuarantinedError(id, r.error.reason, r.error.until);
    }
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

  /** A page of twins in id order whose attributes match `filter` (string comparison). */
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
  async commands(id: string): Promise<Command[] | null> {
    const rec = await this.#record(id);
    return rec ? rec.commands ?? [] : null;
  }

  /** The device of `id` subscribed to its commands: deliver the open ones. */
  async commandsListening(id: string): Promise<void> {
    const rec = await this.#record(id);
    if (!rec?.commands?.some(isOpen)) return;
    await this.#sys.send(id, { type: "commands_listening" });
  }

  /** What this node knows about a twin it hosts, or null if the twin does not exist. */
  async diagnostics(id: string): Promise<HostDiagnostics | null> {
    const rec = await this.#record(id);
    if (!rec) return null;
    const stored = await this.#o.persistence.snapshots.load(id);
    const info = this.#sys.info(id);
    return {
      node: this.#o.nodeId ?? "local",
      version: rec.state.version,
      connectivity: rec.state.connectivity,
      traffic: rec.traffic ?? null,
      actor: {
        resident: this.#sys.peek(id) !== undefined,
        mailboxDepth: info?.depth ?? 0,
        lastActive: info?.lastActive ?? null,
        timerAt: this.#armed.get(id) ?? null,
      },
      snapshot: {
        persistedVersion: stored?.state.version ?? null,
        unpersisted: rec.state.version - (stored?.state.version ?? 0),
        savedAt: this.#savedAt.get(id) ?? null,
      },
      commands: (rec.commands ?? []).slice(-10),
      alarms: alarmsOf(rec).filter((a) => a.state !== "cleared"),
      rules: ruleStatus(rec.rules),
      quarantine: quarantineView(this.#quarantine.get(id), this.#o.clock.now()),
      refused: [...(this.#refused.get(id) ?? [])],
    };
  }

  /** The freshest record of a twin (memory, commit queue, store), or null if none exists. */
  async #record(id: string): Promise<TwinRecord | null> {
    const rec = this.#peek(id) ?? this.#dirty.get(id) ?? this.#committing.get(id) ??
      (await this.#o.persistence.snapshots.load(id));
    return rec && rec.state.version > 0 ? rec : null;
  }

  /** Status of a twin's rules (faults, pending timers), or null if it does not exist. */
  async ruleStatus(twin: string): Promise<RuleStatus[] | null> {
    const rec = await this.#record(twin);
    return rec ? ruleStatus(rec.rules) : null;
  }

  /** Alarms of the twins in the snapshot store (fresher in-memory records win). */
  async listAlarms(q: AlarmQuery): Promise<{ items: Alarm[]; next?: string }> {
    await this.flush();
    return listAlarms(
      this.#o.persistence.snapshots,
      q,
      (r) => this.#peek(r.state.id) ?? r,
    );
  }

  async list(
    after: string | undefined,
    limit: number,
    filter: Record<string, string>,
  ): Promise<{ items: TwinState[]; next?: string }> {
    await this.flush();
    return listTwins(
      this.#o.persistence.snapshots,
      after,
      limit,
      filter,
      (s) => this.#peek(s.id)?.state ?? s,
    );
  }

  /** Every persisted twin with a non-empty desired state (to republish retained downlinks). */
  async *withDesired(): AsyncIterable<TwinState> {
    for await (const r of this.#stored()) {
      if (Object.keys(r.state.desired).length > 0) yield r.state;
    }
  }

  /** Remove from a commit batch the twins this node may no longer persist. */
  #fence(batch: Map<string, TwinRecord>, seqs: Map<string, number[]>): void {
    const may = this.#o.mayPersist;
    if (!may) return;
    let fenced = 0;
    for (const id of batch.keys()) {
      if (may(id)) continue;
      batch.delete(id);
      for (const s of seqs.get(id) ?? []) this.#forget(s);
      seqs.delete(id);
      fenced++;
    }
    if (fenced > 0) {
      this.#log.warn("changes of fenced twins dropped (shard no longer owned)", { twins: fenced });
    }
  }

  /** Never retire this entry here: its effects were dropped unpersisted. */
  #forget(seq: number): void {
    this.#needs.delete(seq);
    this.#fenced.add(seq);
  }

  /** Drop the matching twins without persisting them (their shard's lease was lost). */
  async discard(pred: (id: string) => boolean): Promise<number> {
    this.#disarm(pred);
    const n = await this.#sys.dropWhere(pred);
    const seqs = new Map<string, number[]>();
    const batch = new Map<string, TwinRecord>();
    for (const [id, r] of this.#dirty) if (pred(id)) batch.set(id, r);
    for (const id of batch.keys()) {
      this.#dirty.delete(id);
      seqs.set(id, this.#dirtySeqs.get(id) ?? []);
      this.#dirtySeqs.delete(id);
    }
    for (const l of seqs.values()) for (const s of l) this.#forget(s);
    return n;
  }

  /** Persist and drop the resident twins whose id matches (a shard being handed off). */
  release(pred: (id: string) => boolean): Promise<number> {
    this.#disarm(pred);
    return this.#sys.passivateWhere(pred);
  }

  /** Forget the rule timers of twins another node takes over (it arms them itself). */
  #disarm(pred: (id: string) => boolean): void {
    for (const id of this.#armed.keys()) if (pred(id)) this.#armed.delete(id);
  }

  /** Passivate idle twins now (also runs on a timer). */
  sweep(): Promise<number> {
    return this.#sys.sweep();
  }

  /** Drain mailboxes, persist everything, stop timers. */
  async close(): Promise<void> {
    if (this.#timer !== undefined) this.#o.clock.clear(this.#timer);
    this.#timer = undefined;
    await this.#sys.close();
    await this.flush();
    this.#closed = true;
    if (this.#flushTimer !== undefined) this.#o.clock.clear(this.#flushTimer);
    this.#flushTimer = undefined;
  }
}
