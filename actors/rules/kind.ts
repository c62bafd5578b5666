/**
 * The contract between the engine and each rule kind, and the field accessors they share.
 * A kind is three pure functions over one rule's state; the engine does the rest (state
 * bookkeeping, faults, profile reloads).
 * @module
 */
import { RuleFault } from "./errors.ts";
import type { FieldScope } from "./expression_eval.ts";
import type { RulesOutcome } from "./outcome.ts";
import type { RuleState, Scalar } from "./state.ts";

/** What a kind sees in one call. */
export interface Ctx extends FieldScope {
  /** Current time (ms): drives `forSeconds`, stale detection and window closing by time. */
  now: number;
  /** The message's timestamp (ms), or `now` in `tick`: drives rates, windows, deadbands. */
  ts: number;
  fields: Readonly<Record<string, Scalar>>;
  /** Collects transitions, actions, points, suppressed fields. */
  out: RulesOutcome;
}

/** One rule kind's behaviour. States passed in are never mutated. */
export interface KindImpl<R> {
  /**
   * A telemetry message. Returns the new state, the same state (evaluated, nothing
   * changed), or `undefined` (not evaluated: the message lacks what the rule needs).
   */
  sample(rule: R, st: Readonly<RuleState>, c: Ctx): RuleState | undefined;
  /** Time passed `deadline`: returns the new (or same) state. */
  time?(rule: R, st: Readonly<RuleState>, c: Ctx): RuleState;
  /** When `time` next has something to do (ms; 0 = at once), or null. */
  deadline?(rule: R, st: Readonly<RuleState>): number | null;
}

/** A field's value when it is a telemetry scalar, else `undefined` (never a prototype member). */
export function scalarField(
  fields: Readonly<Record<string, Scalar>>,
  name: string,
): Scalar | undefined {
  const v = fields[name];
  return typeof v === "number" || typeof v === "string" || typeof v === "boolean" ? v : undefined;
}

/**
 * A numeric field, or `undefined` when absent.
 * @throws {RuleFault} when the field holds a string or boolean.
 */
export function numberField(
  fields: Readonly<Record<string, Scalar>>,
  name: string,
): number | undefined {
  const v = fields[name];
  if (typeof v === "number") return v;
  if (typeof v === "string" || typeof v === "boolean") {
    throw new RuleFault(`Field "${name}" holds a ${typeof v}, not a number`);
  }
  return undefined;
}
