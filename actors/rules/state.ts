/**
 * The per-twin rules state: plain JSON, persisted inside the twin snapshot, kept small.
 * Objects are never mutated once returned: the engine replaces a rule's state object when
 * that rule's state changes and shares the others.
 * @module
 */
import type { Severity } from "./profile_schema.ts";

/** A telemetry value. */
export type Scalar = number | boolean | string;

/** Why a rule last failed, and how often in a row. */
export interface RuleFaultInfo {
  /** The error message (truncated to 200 characters). */
  message: string;
  /** Consecutive failures; reset by the next successful evaluation. */
  count: number;
  /** When it last failed (ms, the `now` of that call). */
  at: number;
}

/**
 * One rule's state. Which fields are present depends on the rule kind; absent means
 * "initial". Times are ms since the epoch.
 */
export interface RuleState {
  /** Fingerprint of the rule definition this state belongs to. */
  def: string;
  /** Present while the rule's alarm is raised. */
  active?: true;
  /** Severity the alarm was raised with (present while `active`). */
  severity?: Severity;
  /** `forSeconds`: since when (`now`) the condition has held. */
  pendingSince?: number;
  /** `forSeconds`: the latest value while pending (reported when the alarm is raised). */
  pendingValue?: Scalar | null;
  /** Present while the rule is faulted. */
  fault?: RuleFaultInfo;
  /** stale: last matching message (`now`), or when the rule started watching. */
  seen?: number;
  /** rate: retained samples `[t0, v0, t1, v1, ...]` (sample ts), oldest first. */
  samples?: number[];
  /** deadband: the last value let through. */
  written?: Scalar;
  /** deadband: sample ts of `written`. */
  writtenAt?: number;
  /** anomaly: samples absorbed (capped at the warm-up). */
  n?: number;
  /** anomaly: EWMA mean. */
  mean?: number;
  /** anomaly: EWMA variance. */
  variance?: number;
  /** window: start of the open window (sample ts). */
  windowStart?: number;
  /** window: per field `[count, sum, min, max, last]`, flattened in the rule's field order. */
  acc?: number[];
  /** window: end of the last window closed by time; earlier samples are late and ignored. */
  closedUntil?: number;
}

/** All rules' state of one twin. */
export interface RulesState {
  /** Fingerprint of the profile this state was last reconciled with. */
  profile: string;
  /** State per rule id; a rule with no entry is in its initial state. */
  rules: Record<string, RuleState>;
}

/** A rule's status as operators see it (see {@linkcode ruleStatus}). */
export interface RuleStatus {
  rule: string;
  /** The rule's alarm is raised. */
  active: boolean;
  /** Severity of the raised alarm, else null. */
  severity: Severity | null;
  /** When the condition started holding, while a `forSeconds` delay runs; else null. */
  pendingSince: number | null;
  /** The last failure while the rule is faulted, else null. */
  fault: RuleFaultInfo | null;
}

/**
 * The status of every rule that has state, in id order: raised alarms, pending delays,
 * faults. Rules with no entry are idle and healthy.
 *
 * @example
 * ```ts
 * const faulted = ruleStatus(outcome.state).filter((s) => s.fault);
 * ```
 */
export function ruleStatus(state: RulesState | undefined): RuleStatus[] {
  if (!state) return [];
  return Object.keys(state.rules).sort().map((rule) => {
    const s = state.rules[rule];
    return {
      rule,
      active: s.active === true,
      severity: s.severity ?? null,
      pendingSince: s.pendingSince ?? null,
      fault: s.fault ?? null,
    };
  });
}
