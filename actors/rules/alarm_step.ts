/**
 * Raise and clear, shared by the alarm kinds: one active alarm per rule, actions emitted
 * at the matching transition, and the optional `forSeconds` delay before a raise.
 * @module
 */
import type { CompiledRuleBase } from "./compile.ts";
import type { Ctx } from "./kind.ts";
import type { RulesOutcome } from "./outcome.ts";
import type { RuleState, Scalar } from "./state.ts";

/** Raise the rule's alarm (the caller checked it is not raised). */
export function raise(
  rule: CompiledRuleBase,
  st: Readonly<RuleState>,
  value: Scalar | null,
  ts: number,
  out: RulesOutcome,
): RuleState {
  out.transitions.push({ rule: rule.id, kind: "raise", severity: rule.severity, value, ts });
  for (const action of rule.onRaise) out.actions.push({ rule: rule.id, action });
  const next: RuleState = { ...st, active: true, severity: rule.severity };
  delete next.pendingSince;
  delete next.pendingValue;
  return next;
}

/** Clear the rule's raised alarm (the caller checked it is raised). */
export function clear(
  rule: CompiledRuleBase,
  st: Readonly<RuleState>,
  value: Scalar | null,
  ts: number,
  out: RulesOutcome,
): RuleState {
  const severity = st.severity ?? rule.severity;
  out.transitions.push({ rule: rule.id, kind: "clear", severity, value, ts });
  for (const action of rule.onClear) out.actions.push({ rule: rule.id, action });
  const next: RuleState = { ...st };
  delete next.active;
  delete next.severity;
  return next;
}

/**
 * One evaluation of a condition-driven alarm. While raised, `release` clears it; while not,
 * `trigger` raises it — at once, or once it has held for `forMs` (the delay runs on `now`).
 */
export function decide(
  rule: CompiledRuleBase,
  st: Readonly<RuleState>,
  trigger: boolean,
  release: boolean,
  value: Scalar | null,
  forMs: number,
  c: Ctx,
): RuleState {
  if (st.active) return release ? clear(rule, st, value, c.ts, c.out) : st;
  if (!trigger) {
    if (st.pendingSince === undefined) return st;
    const next = { ...st };
    delete next.pendingSince;
    delete next.pendingValue;
    return next;
  }
  const since = st.pendingSince ?? c.now;
  if (c.now - since >= forMs) return raise(rule, st, value, c.ts, c.out);
  if (st.pendingSince === since && st.pendingValue === value) return st;
  return { ...st, pendingSince: since, pendingValue: value };
}

/** When a pending delayed raise is due, or null. */
export function pendingDeadline(st: Readonly<RuleState>, forMs: number): number | null {
  return !st.active && st.pendingSince !== undefined ? st.pendingSince + forMs : null;
}

/** Time step of a delayed raise: raise with the last value seen once the delay passed. */
export function raiseIfDue(
  rule: CompiledRuleBase,
  st: Readonly<RuleState>,
  forMs: number,
  c: Ctx,
): RuleState {
  const due = pendingDeadline(st, forMs);
  if (due === null || due > c.now) return st;
  return raise(rule, st, st.pendingValue ?? null, c.now, c.out);
}
