/**
 * Device profiles and their rules engine, as pure functions (no I/O, injected time):
 * validate and compile a profile, evaluate it per telemetry message and per timer tick,
 * and keep the alarm lifecycle.
 *
 * @example
 * ```ts
 * const r = parseProfile({ rules: [{ id: "overheat", kind: "threshold", field: "temp",
 *   op: ">", value: 80, clear: 75, severity: "critical" }] });
 * if (r.ok) {
 *   const out = evaluate(r.profile, undefined, { fields: { temp: 91 }, reported: {}, ts: 0 }, 0);
 *   out.transitions; // [{ rule: "overheat", kind: "raise", severity: "critical", value: 91, ts: 0 }]
 * }
 * ```
 * @module
 */
export { parseProfile, type ParseProfileResult, type ProfileIssue } from "./profile.ts";
export {
  type Aggregate,
  AGGREGATES,
  MAX_EXPR_CHARS,
  MAX_PROFILE_BYTES,
  MAX_RULES,
  type Profile,
  type ProfileInput,
  ProfileSchema,
  type Rule,
  type RuleAction,
  type RuleKind,
  RuleSchema,
  SEVERITIES,
  type Severity,
} from "./profile_schema.ts";
export type { CompiledProfile, CompiledRule } from "./compile.ts";
export { evaluate, nextDeadline, type RulesInput, tick } from "./engine.ts";
export type {
  AlarmTransition,
  DueAction,
  RollupPoint,
  RuleFaultReport,
  RulesOutcome,
} from "./outcome.ts";
export {
  type RuleFaultInfo,
  type RulesState,
  type RuleState,
  type RuleStatus,
  ruleStatus,
  type Scalar,
} from "./state.ts";
export { ackAlarm, type Alarm, applyTransition, MAX_ACK_COMMENT, parseAlarmId } from "./alarm.ts";
export {
  type BinaryOp,
  type Expr,
  type FunctionName,
  MAX_EXPRESSION_DEPTH,
  MAX_EXPRESSION_LENGTH,
  MAX_EXPRESSION_NODES,
  parseExpression,
  type Value,
} from "./expression.ts";
export { type ExprType, inferType, parseCondition } from "./expression_check.ts";
export { evaluateExpression, type FieldScope } from "./expression_eval.ts";
export { ExpressionError, RuleFault } from "./errors.ts";
