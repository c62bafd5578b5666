/**
 * Rule timers of the twin host: when each twin's rules (durations, staleness, windows) or
 * commands (expiry) next need a tick, and one interval on the injected clock that ticks the
 * due twins — activating passivated ones.
 * @module
 */
import type { TwinRecord, TwinState } from "../../actors/twin.ts";
import type { CompiledProfile } from "../../actors/rules/compile.ts";
import { nextDeadline } from "../../actors/rules/engine.ts";
import { isOpen, nextExpiry } from "../../actors/commands.ts";
import type { Clock, TimerId } from "./clock.ts";
import type { Logger } from "../obs/log.ts";

/** Options of {@linkcode RuleTimers}. */
export interface RuleTimersOptions {
  clock: Clock;
  logger: Logger;
  /** How often due timers are checked (ms). Default 1000. */
  everyMs?: number;
  /** False for twins whose timers this node must not run; they stay armed. */
  owns?(id: string): boolean;
  /**
   * Tick twin `id`. Resolves with a time to try again (its quarantine ends then), or null;
   * rejects when the tick failed.
   */
  tick(id: string): Promise<number | null>;
  /** The profile a twin uses, if any. */
  resolve?(state: TwinState, hasRuleState: boolean): CompiledProfile | undefined;
  /** Every stored twin record, in id order. */
  stored(): AsyncIterable<TwinRecord>;
  /** Ids of resident twins. */
  resident(): Iterable<string>;
  /** A resident twin's record, if it holds a current one. */
  peek(id: string): TwinRecord | undefined;
}

/** The armed rule timers of one host. */
export class RuleTimers {
  readonly #o: RuleTimersOptions;
  /** Twin id -> when its rules next need a tick (ms). */
  readonly #armed = new Map<string, number>();
  #timer: TimerId | undefined;
  #closed = false;

  constructor(o: RuleTimersOptions) {
    this.#o = o;
  }

  /** Twins with timers armed. */
  get size(): number {
    return this.#armed.size;
  }

  /** When twin `id` next needs a tick (ms), if armed. */
  at(id: string): number | undefined {
    return this.#armed.get(id);
  }

  /** Arm (or disarm) twin `id` after a change: the next rule deadline or command expiry. */
  arm(id: string, profile: CompiledProfile | undefined, rec: TwinRecord): void {
    const rules = profile ? nextDeadline(profile, rec.rules) : null;
    const cmds = nextExpiry(rec.commands);
    const at = rules === null ? cmds : cmds === null ? rules : Math.min(rules, cmds);
    if (at === null) this.#armed.delete(id);
    else this.#armed.set(id, at);
    if (at !== null) this.#start();
  }

  /** The interval that ticks due twins; started once, on the first armed twin. */
  #start(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = this.#o.clock.setInterval(() => this.#tickDue(), this.#o.everyMs ?? 1000);
  }

  /** Send a tick to every twin whose timer is due. */
  #tickDue(): void {
    const now = this.#o.clock.now();
    for (const [id, at] of this.#armed) {
      if (at > now || !(this.#o.owns?.(id) ?? true)) continue;
      this.#armed.delete(id);
      this.#o.tick(id).then((until) => {
        // a quarantined twin's timers wait for the end of its quarantine
        if (until !== null) this.#armed.set(id, until);
      }, (err) => {
        this.#armed.set(id, now + 5_000); // try again soon
        this.#o.logger.warn("rule timer tick failed", { twin: id, err });
      });
    }
  }

  /**
   * Arm the timers of stored twins (after a start, or after acquiring shards): every stored
   * twin with rule state or a profile; `want` limits it (cluster: owned shards).
   */
  async armStored(want: (id: string) => boolean = () => true): Promise<number> {
    let n = 0;
    for await (const r of this.#o.stored()) {
      const id = r.state.id;
      if (!want(id) || this.#armed.has(id) || this.#o.peek(id)) continue;
      const p = this.#o.resolve?.(r.state, r.rules !== undefined);
      if (!p && !r.commands?.some(isOpen)) continue;
      this.arm(id, p, r);
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
    for (const id of this.#o.resident()) {
      const rec = this.#o.peek(id);
      if (rec && (matches(rec.state) || rec.rules !== undefined)) soon(id);
    }
    for (const id of this.#armed.keys()) this.#armed.set(id, 0);
    this.#start();
    // stored twins using the profile that are not in memory (a scan: profile changes are rare)
    const mine = this.#o.owns ?? (() => true);
    for await (const r of this.#o.stored()) {
      const id = r.state.id;
      if (!this.#armed.has(id) && mine(id) && (matches(r.state) || r.rules !== undefined)) {
        soon(id);
      }
    }
    return n;
  }

  /** Forget the timers of matching twins (another node takes them over and arms them). */
  disarm(pred: (id: string) => boolean): void {
    for (const id of this.#armed.keys()) if (pred(id)) this.#armed.delete(id);
  }

  /** Stop ticking. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#o.clock.clear(this.#timer);
    this.#timer = undefined;
  }
}
