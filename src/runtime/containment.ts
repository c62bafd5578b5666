/**
 * Containment in the twin host: twins quarantined because their snapshot cannot be stored,
 * and the device messages twins refused (size limit, quarantine). A quarantined twin takes
 * no changes for a while; the rest of the node goes on.
 * @module
 */
import type { TwinRecord, TwinResult } from "../../actors/twin.ts";
import type { Clock } from "./clock.ts";
import type { Logger } from "../obs/log.ts";
import type { Metrics } from "../obs/metrics.ts";
import { TwinQuarantinedError, TwinTooLargeError } from "../errors.ts";
import type { LogLimiter } from "./log_limiter.ts";
import {
  type HostRefusal,
  KEEP_REFUSALS,
  MAX_QUARANTINES,
  MAX_REFUSING_TWINS,
  pushBounded,
  type Quarantine,
  type QuarantineRecord,
  quarantineView,
  setBounded,
  type TwinRefusal,
} from "./quarantine.ts";

/** Options of {@linkcode Containment}. */
export interface ContainmentOptions {
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  limiter: LogLimiter;
  /** How long a twin whose snapshot cannot be stored takes no changes (ms). Default 60 s. */
  quarantineMs?: number;
}

/** Quarantines and refusals of the twins of one host. */
export class Containment {
  readonly #o: ContainmentOptions;
  /** Twins quarantined on this node (their last quarantine), by id. */
  readonly #quarantine = new Map<string, QuarantineRecord>();
  /** Quarantines per twin so far: a change applied in an older generation was dropped. */
  readonly #gen = new Map<string, number>();
  /** Device messages each twin refused lately (diagnostics). */
  readonly #refused = new Map<string, TwinRefusal[]>();

  constructor(o: ContainmentOptions) {
    this.#o = o;
  }

  /** Twin `id`'s last quarantine record on this node, if any. */
  record(id: string): QuarantineRecord | undefined {
    return this.#quarantine.get(id);
  }

  /** True while the resident state of twin `id` is the one that could not be stored. */
  holdsDropped(id: string): boolean {
    return this.#quarantine.get(id)?.reset === true;
  }

  /** Twin `id`'s quarantine generation (see `TwinHost` commits). */
  gen(id: string): number {
    return this.#gen.get(id) ?? 0;
  }

  /** The refusal of a change to twin `id` now, while it is quarantined; else null. */
  refusal(id: string): HostRefusal | null {
    const q = this.#quarantine.get(id);
    if (!q || this.#o.clock.now() >= q.until) return null;
    return { code: "twin_quarantined", reason: q.reason, until: q.until };
  }

  /**
   * Quarantine twin `id`: its snapshot cannot be stored, its latest record `dropped` and `lost`
   * device messages are given up. `resident`: its state in memory is the dropped one.
   */
  quarantine(
    id: string,
    dropped: TwinRecord,
    lost: number,
    err: unknown,
    resident: boolean,
  ): void {
    const now = this.#o.clock.now();
    const reason = err instanceof Error ? err.message : String(err);
    const until = now + (this.#o.quarantineMs ?? 60_000);
    this.#gen.set(id, (this.#gen.get(id) ?? 0) + 1);
    const q: QuarantineRecord = {
      since: now,
      until,
      reason: reason.slice(0, 500),
      droppedVersion: dropped.state.version,
      droppedMessages: lost,
      reset: resident,
    };
    setBounded(this.#quarantine, id, q, MAX_QUARANTINES);
    this.#o.metrics.twinsQuarantined.inc();
    this.#o.logger.error(
      "twin quarantined: its snapshot cannot be stored; its unsaved changes are dropped",
      {
        twin: id,
        version: dropped.state.version,
        droppedMessages: lost,
        until: new Date(until).toISOString(),
        err,
      },
    );
  }

  /** A device message the twin refused: counted with the broker's rejections, logged, kept. */
  refuse(twin: string, topic: string, error: HostRefusal): void {
    this.#o.metrics.messagesRejected.inc({ reason: error.code });
    const refusal = { at: this.#o.clock.now(), reason: error.code, topic: topic.slice(0, 200) };
    pushBounded(this.#refused, twin, refusal, KEEP_REFUSALS, MAX_REFUSING_TWINS);
    if (this.#o.limiter.allow(`refused\u0000${twin}`)) {
      this.#o.logger.warn("device message refused by its twin", {
        device: twin,
        topic: topic.slice(0, 200),
        reason: error.code,
        ...(error.code === "twin_too_large"
          ? { size: error.size, limit: error.limit }
          : { until: new Date(error.until).toISOString() }),
      });
    }
  }

  /** Twin `id`'s last quarantine as diagnostics show it, or null. */
  view(id: string): (Quarantine & { active: boolean }) | null {
    return quarantineView(this.#quarantine.get(id), this.#o.clock.now());
  }

  /** Device messages twin `id` refused lately, oldest first. */
  refusals(id: string): TwinRefusal[] {
    return [...(this.#refused.get(id) ?? [])];
  }

  /** The error of a change the host refused (size limit, quarantine), if it was refused. */
  static refused(
    id: string,
    e: HostRefusal | NonNullable<TwinResult["error"]> | undefined,
  ): Error | null {
    if (e?.code === "twin_too_large") return new TwinTooLargeError(id, e.size, e.limit);
    if (e?.code === "twin_quarantined") return new TwinQuarantinedError(id, e.reason, e.until);
    return null;
  }

  /** Twin `id` was quarantined after a change was applied in generation `gen`: it is lost. */
  lost(id: string, gen: number): Error | null {
    if (this.gen(id) === gen) return null;
    const q = this.#quarantine.get(id)!;
    return new TwinQuarantinedError(id, q.reason, q.until, true);
  }
}
