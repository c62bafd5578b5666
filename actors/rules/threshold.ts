/**
 * `threshold` rules: compare a numeric field with a value; optional hysteresis (`clear`)
 * and delay (`forSeconds`).
 * @module
 */
import { decide, pendingDeadline, raiseIfDue } from "./alarm_step.ts";
import type { CompiledThreshold } from "./compile.ts";
import { type KindImpl, numberField } from "./kind.ts";

/** The threshold kind. A message without the field does not evaluate the rule. */
export const thresholdKind: KindImpl<CompiledThreshold> = {
  sample(rule, st, c) {
    const v = numberField(c.fields, rule.field);
    if (v === undefined) return undefined;
    return st.active
      ? decide(rule, st, false, rule.release(v), v, rule.forMs, c)
      : decide(rule, st, rule.test(v), false, v, rule.forMs, c);
  },
  time: (rule, st, c) => raiseIfDue(rule, st, rule.forMs, c),
  deadline: (rule, st) => pendingDeadline(st, rule.forMs),
};
