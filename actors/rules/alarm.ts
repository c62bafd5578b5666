/**
 * The alarm lifecycle as pure functions, in the contract's shape
 * (`GET /v1/alarms` items). One alarm per raise: a raise while raised counts, a clear ends
 * it, the next raise opens a new alarm with a new id.
 * @module
 */
import type { AlarmTransition } from "./outcome.ts";
import type { Severity } from "./profile_schema.ts";
import type { Scalar } from "./state.ts";
import { isValidTwinId } from "../validate.ts";

/** An alarm. Times are ms since the epoch. */
export interface Alarm {
  /** `{twin}:{rule}:{seq}`. */
  id: string;
  twin: string;
  rule: string;
  severity: Severity;
  /** `acknowledged` means active and acknowledged; a cleared alarm keeps `acknowledged`. */
  state: "active" | "acknowledged" | "cleared";
  acknowledged: boolean;
  raisedAt: number;
  clearedAt: number | null;
  /** The value at the (latest) raise. */
  value: Scalar | null;
  /** Raises while it was open (1 for a new alarm). */
  raiseCount: number;
  ackedAt?: number;
  ackComment?: string;
  updatedAt: number;
}

/** Longest acknowledgement comment kept (characters). */
export const MAX_ACK_COMMENT = 1000;

/**
 * Apply a rule's transition to the rule's current alarm (the latest one for this twin and
 * rule, or null). A raise on nothing or on a cleared alarm opens a new alarm with id
 * `{twin}:{rule}:{seq}`; a raise on an open alarm counts it and updates the value; a clear
 * closes it, keeping `acknowledged`. A clear with no open alarm changes nothing: it returns
 * `current` as given (null when there is none).
 *
 * @example
 * ```ts
 * const a = applyTransition(null, "press-7", { rule: "overheat", kind: "raise",
 *   severity: "critical", value: 91, ts: 1000 }, 1)!;
 * a.id; // "press-7:overheat:1"
 * ```
 */
export function applyTransition(
  current: Alarm | null,
  twin: string,
  t: AlarmTransition,
  seq: number,
): Alarm | null {
  const open = current !== null && current.state !== "cleared";
  if (t.kind === "clear") {
    if (!open) return current;
    return { ...current, state: "cleared", clearedAt: t.ts, updatedAt: t.ts };
  }
  if (open) {
    return { ...current, value: t.value, raiseCount: current.raiseCount + 1, updatedAt: t.ts };
  }
  return {
    id: `${twin}:${t.rule}:${seq}`,
    twin,
    rule: t.rule,
    severity: t.severity,
    state: "active",
    acknowledged: false,
    raisedAt: t.ts,
    clearedAt: null,
    value: t.value,
    raiseCount: 1,
    updatedAt: t.ts,
  };
}

/**
 * Acknowledge an alarm: an active one becomes `acknowledged`; a cleared one stays cleared
 * with `acknowledged: true`. Idempotent: acknowledging again returns the alarm unchanged.
 */
export function ackAlarm(alarm: Alarm, now: number, comment?: string): Alarm {
  if (alarm.acknowledged) return alarm;
  const next: Alarm = {
    ...alarm,
    state: alarm.state === "active" ? "acknowledged" : alarm.state,
    acknowledged: true,
    ackedAt: now,
    updatedAt: now,
  };
  if (comment !== undefined) next.ackComment = comment.slice(0, MAX_ACK_COMMENT);
  return next;
}

const ALARM_ID_RE = /^(.+):([A-Za-z0-9_-]{1,64}):(0|[1-9][0-9]{0,15})$/;

/**
 * Split an alarm id into its parts, parsing from the right (twin ids may contain `:` and
 * `.`, rule ids cannot contain `:`). Returns null for a malformed id.
 */
export function parseAlarmId(id: string): { twin: string; rule: string; seq: number } | null {
  const m = ALARM_ID_RE.exec(id);
  if (!m || !isValidTwinId(m[1])) return null;
  const seq = Number(m[3]);
  if (!Number.isSafeInteger(seq)) return null;
  return { twin: m[1], rule: m[2], seq };
}
