/**
 * The effect executor of the twin host: runs the effects a twin change produced — points to
 * the point sink, events to the transport, alarm changes to metrics and the log, desired state to the device, commands to the
 * device's session, rule actions (webhooks, commands), rule faults. An effect that throws is
 * contained: the change stands, the other effects and the node go on.
 * @module
 */
import {
  pointSubMs,
  type TwinEffect,
  type TwinMessage,
  type TwinState,
} from "../../actors/twin.ts";
import { type Command, newCommand } from "../../actors/commands.ts";
import type { JsonObject } from "../../actors/json.ts";
import type { Clock } from "./clock.ts";
import type { PointSink } from "../ports/point_sink.ts";
import type { Transport } from "../transport/port.ts";
import { subjects } from "../transport/subjects.ts";
import type { Logger } from "../obs/log.ts";
import type { Metrics } from "../obs/metrics.ts";
import type { LogLimiter } from "./log_limiter.ts";

/** Options of an {@linkcode EffectExecutor}. */
export interface EffectExecutorOptions {
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  limiter: LogLimiter;
  transport: Transport;
  points?: PointSink;
  /** Publish a twin's full desired state to its device (retained). */
  downlink?(id: string, desired: JsonObject): void;
  /** Where rule webhooks go. */
  webhooks?: {
    send(req: { url: string; headers?: Record<string, string>; body: unknown }): boolean;
  };
  /** Hand commands to a twin's device: resolves with the ids a live session took. */
  commands?: { deliver(twin: string, commands: Command[]): Promise<string[]> };
  /** Commands a rule action sends expire after this long (ms). Default 1 hour. */
  ruleCommandTtlMs?: number;
  /** A rule of the profile `state` uses failed. */
  faulted?(state: TwinState, rule: string, message: string): void;
  /** The twin's state as the host holds it (for a rule fault). */
  state(id: string): TwinState;
  /** Send a message to a twin (rule commands, delivered commands). */
  send(id: string, msg: TwinMessage): Promise<{ error?: object }>;
  /** The entry `seq` has one more need (a point), met with `done`. */
  need(seq: number): void;
  done(seq: number): void;
}

/** Runs twin effects. */
export class EffectExecutor {
  readonly #o: EffectExecutorOptions;
  /** Sub-ms part of `unique` points not caused by a device message (ticks, acks, profiles). */
  #alarmSeq = 0;
  /** The sink's promise the last points got, with their entries and devices (see `point`). */
  #written:
    | { settled: Promise<void>; seqs: (number | undefined)[]; devices: string[] }
    | undefined;

  constructor(o: EffectExecutorOptions) {
    this.#o = o;
  }

  /** Run the effects of a change of twin `id`, in order; `seq`: the inbound entry applied. */
  run(id: string, effects: TwinEffect[], seq: number | undefined): void {
    for (const e of effects) {
      try {
        this.#effect(id, e, seq);
      } catch (err) {
        this.failed(id, e.type, err);
      }
    }
  }

  /** An effect of twin `id` threw: counted, logged once per twin and kind per minute. */
  failed(id: string, type: string, err: unknown): void {
    this.#o.metrics.effectFailures.inc({ type });
    if (this.#o.limiter.allow(`effect\u0000${type}\u0000${id}`)) {
      this.#o.logger.error("effect of a twin change failed; the change stands", {
        twin: id,
        type,
        err,
      });
    }
  }

  /**
   * Write a point; entry `seq` (if any) is retired only once it is written. The sink gives the
   * points of one batch one promise: the points in a row that got the same promise wait on it
   * once (a reaction per point cost more than writing the point).
   */
  point(seq: number | undefined, e: Extract<TwinEffect, { type: "point" }>): void {
    const sink = this.#o.points;
    if (!sink) return;
    if (seq !== undefined) this.#o.need(seq);
    const settled = sink.write({
      measurement: e.measurement ?? "telemetry",
      tags: e.tags,
      fields: e.fields,
      ts: e.ts,
      subMs: e.unique ? pointSubMs(seq ?? this.#alarmSeq++) : e.subMs,
    });
    let w = this.#written;
    if (w?.settled !== settled) {
      const group = w = this.#written = { settled, seqs: [], devices: [] };
      settled.then(
        () => {
          if (this.#written === group) this.#written = undefined; // later points: a new group
          for (const s of group.seqs) if (s !== undefined) this.#o.done(s);
        },
        (err) => {
          if (this.#written === group) this.#written = undefined;
          // not retired: the entry is applied again (and its point written) after a restart
          for (const d of group.devices) this.failed(d, "point", err);
        },
      );
    }
    w.seqs.push(seq);
    w.devices.push(e.tags.device ?? "");
  }

  #effect(id: string, e: TwinEffect, seq: number | undefined): void {
    const m = this.#o.metrics;
    switch (e.type) {
      case "point":
        this.point(seq, e);
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
        this.#o.logger.info(`alarm ${e.change}`, {
          twin: id,
          rule: a.rule,
          alarm: a.id,
          severity: a.severity,
          state: a.state,
        });
        break;
      }
      case "webhook": {
        m.ruleActions.inc({ type: "webhook" });
        const queued = this.#o.webhooks?.send({ url: e.url, headers: e.headers, body: e.body });
        if (!queued) m.webhooks.inc({ outcome: "dropped" });
        break;
      }
      case "command":
        this.#ruleCommand(id, e);
        break;
      case "deliver":
        this.#deliver(id, e.commands);
        break;
      case "fault":
        m.ruleFaults.inc();
        this.#o.faulted?.(this.#o.state(id), e.rule, e.message);
        if (e.count === 1) {
          this.#o.logger.warn("rule faulted", { twin: id, rule: e.rule, message: e.message });
        }
        break;
    }
  }

  /** A rule's command action: queued like an API command (async). */
  #ruleCommand(id: string, e: Extract<TwinEffect, { type: "command" }>): void {
    this.#o.metrics.ruleActions.inc({ type: "command" });
    const command = newCommand({
      name: e.name,
      args: e.args,
      mode: "async",
      source: `rule:${e.rule}`,
      now: this.#o.clock.now(),
      ttlMs: this.#o.ruleCommandTtlMs ?? 3_600_000,
    });
    const log = this.#o.logger;
    this.#o.send(id, { type: "command", command }).then((r) => {
      if (r.error) log.warn("rule command not queued", { twin: id, rule: e.rule, ...r.error });
    }, (err) => log.warn("rule command not queued", { twin: id, rule: e.rule, err }));
  }

  /** Hand commands to the device; mark the ones that reached a live session delivered. */
  #deliver(id: string, commands: Command[]): void {
    const link = this.#o.commands;
    if (!link) return;
    link.deliver(id, commands).then((ids) => {
      if (ids.length === 0) return;
      this.#o.metrics.commands.inc({ status: "delivered" }, ids.length);
      return this.#o.send(id, { type: "commands_delivered", ids, at: this.#o.clock.now() });
    }).catch((err) =>
      this.#o.logger.warn("commands not delivered; they stay queued", { twin: id, err })
    );
  }
}
