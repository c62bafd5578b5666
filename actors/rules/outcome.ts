/**
 * What one evaluation produces, for the runtime to execute.
 * @module
 */
import type { RuleAction, Severity } from "./profile_schema.ts";
import type { RulesState, Scalar } from "./state.ts";

/** A rule's alarm was raised or cleared. */
export interface AlarmTransition {
  rule: string;
  kind: "raise" | "clear";
  severity: Severity;
  /**
   * The observed value: the field's value (threshold, anomaly), the rate in units per
   * second (rate), or null (stale, expression, and clears forced by a profile change).
   */
  value: Scalar | null;
  /** When: the message's `ts` for transitions caused by a message, `now` for time-driven. */
  ts: number;
}

/** One closed window of a `window` rule. */
export interface RollupPoint {
  rule: string;
  measurement: string;
  /** `{field}_{agg}`, e.g. `temp_avg`, `temp_max`, `temp_count`. */
  fields: Record<string, number>;
  /** Window start (ms). */
  ts: number;
}

/** A rule action due because of a transition. */
export interface DueAction {
  rule: string;
  action: RuleAction;
}

/** A rule that failed in this call (it is marked faulted in the state). */
export interface RuleFaultReport {
  rule: string;
  message: string;
  /** Consecutive failures including this one (log the first, count the rest). */
  count: number;
}

/** Result of `evaluate` or `tick`. `state` is the same object as given when nothing changed. */
export interface RulesOutcome {
  state: RulesState;
  transitions: AlarmTransition[];
  /** Telemetry fields to drop from the InfluxDB point and the stream event (deadband). */
  suppressed: string[];
  points: RollupPoint[];
  actions: DueAction[];
  faults: RuleFaultReport[];
}
