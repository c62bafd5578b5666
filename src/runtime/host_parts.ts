/**
 * The parts of a twin host, built and wired together: the actor system with the twin
 * behavior, the commit queue, containment, the effect executor, rule timers, queries and the
 * inbound dispatch. `TwinHost` is the facade over them.
 * @module
 */
import { ActorSystem } from "./actor_system.ts";
import type { Clock } from "./clock.ts";
import { emptyTwin, type TwinMessage, type TwinRecord, type TwinState } from "../../actors/twin.ts";
import type { CompiledProfile } from "../../actors/rules/compile.ts";
import type { JsonObject } from "../../actors/json.ts";
import type { JsonLimits } from "../../actors/json_intake.ts";
import type { Command } from "../../actors/commands.ts";
import type { HostPersistence } from "../persistence/port.ts";
import type { PointSink } from "../ports/point_sink.ts";
import type { Transport } from "../transport/port.ts";
import type { Logger } from "../obs/log.ts";
import type { Metrics } from "../obs/metrics.ts";
import { CommitQueue } from "./commit_queue.ts";
import { Containment } from "./containment.ts";
import { EffectExecutor } from "./effect_executor.ts";
import { InboundDispatch } from "./inbound_dispatch.ts";
import { LogLimiter } from "./log_limiter.ts";
import { storedRecords } from "./list_twins.ts";
import { RuleTimers } from "./rule_timers.ts";
import { type Reply, TwinBehavior } from "./twin_behavior.ts";
import { TwinQueries } from "./twin_queries.ts";
import { FleetIndex } from "./fleet_index.ts";

/** What the parts of a twin host are built from (see `TwinHostOptions`). */
export interface HostPartsOptions {
  /** Snapshots, and the log entries are retired from (replayed too, when it is durable). */
  persistence: HostPersistence;
  transport: Transport;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  points?: PointSink;
  /** Publish a twin's full desired state to its device (retained). */
  downlink?(id: string, desired: JsonObject): void;
  idleMs?: number;
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

/** The parts of a twin host. */
export interface HostParts {
  sys: ActorSystem<TwinRecord, TwinMessage, Reply>;
  queue: CommitQueue;
  containment: Containment;
  timers: RuleTimers;
  queries: TwinQueries;
  inbound: InboundDispatch;
  fleet: FleetIndex;
}

/** Build the parts of a twin host; `drained` is called when unretired entries go down. */
export function hostParts(o: HostPartsOptions, drained: () => void): HostParts {
  const { clock, logger, metrics: m } = o;
  const snapshots = o.persistence.snapshots;
  const limiter = new LogLimiter(clock);
  // the actor system is built last (it needs the behavior); the closures below run later
  // deno-lint-ignore prefer-const -- assigned once, below, after the closures that use it
  let sys: ActorSystem<TwinRecord, TwinMessage, Reply>;
  const resident = (id: string) => sys.peek(id) !== undefined;
  const containment = new Containment({
    clock,
    logger,
    metrics: m,
    limiter,
    quarantineMs: o.quarantineMs,
  });
  /** A resident twin's record, unless it holds the state that could not be stored. */
  const peek = (id: string) => containment.holdsDropped(id) ? undefined : sys.peek(id);
  const queue = new CommitQueue({
    snapshots,
    log: o.persistence.log,
    clock,
    logger,
    metrics: m,
    flushDelayMs: o.flushDelayMs,
    mayPersist: o.mayPersist,
    resident,
    unstorable: (id, dropped, lost, err) =>
      containment.quarantine(id, dropped, lost, err, resident(id)),
    drained,
  });
  const fleet = new FleetIndex({ owns: o.owns });
  const profiles = o.profiles;
  const resolve = profiles && ((s: TwinState, has: boolean) => profiles.resolve(s, has));
  const timers = new RuleTimers({
    clock,
    logger,
    everyMs: o.timerEveryMs,
    owns: o.owns,
    tick: (id) =>
      sys.send(id, { type: "tick" }).then((r) =>
        r.error?.code === "twin_quarantined" ? r.error.until : null
      ),
    resolve,
    stored: () => storedRecords(snapshots),
    resident: () => sys.ids(),
    peek,
  });
  const effects = new EffectExecutor({
    clock,
    logger,
    metrics: m,
    limiter,
    transport: o.transport,
    points: o.points,
    downlink: o.downlink,
    webhooks: o.webhooks,
    commands: o.commands,
    ruleCommandTtlMs: o.ruleCommandTtlMs,
    faulted: profiles?.faulted && ((s, rule, msg) => profiles.faulted!(s, rule, msg)),
    state: (id) => peek(id)?.state ?? emptyTwin(id, 0).state,
    send: (id, msg) => sys.send(id, msg),
    need: (seq) => queue.need(seq),
    done: (seq) => queue.done(seq),
  });
  sys = new ActorSystem<TwinRecord, TwinMessage, Reply>({
    clock,
    logger,
    idleMs: o.idleMs,
    hooks: {
      activated: () => (m.activations.inc(), m.twinsActive.inc()),
      passivated: () => (m.passivations.inc(), m.twinsActive.dec()),
      failed: () => m.handlerFailures.inc(),
      mailboxFull: () => m.mailboxFull.inc(),
    },
    behavior: new TwinBehavior({
      clock,
      metrics: m,
      snapshots,
      queue,
      containment,
      effects,
      timers,
      resolve,
      maxTwinBytes: o.maxTwinBytes,
      fleet,
    }),
  });
  const queries = new TwinQueries({
    snapshots,
    clock,
    nodeId: o.nodeId,
    queue,
    containment,
    timers,
    peek,
    resident,
    actor: (id) => sys.info(id),
  });
  const inbound = new InboundDispatch({
    sys,
    queue,
    containment,
    logger,
    source: o.source,
    jsonLimits: o.jsonLimits,
  });
  return { sys, queue, containment, timers, queries, inbound, fleet };
}
