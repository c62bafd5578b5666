/**
 * `expression` rules: a boolean expression over the twin's fields; raised while true
 * (optionally after `forSeconds`), cleared when false.
 * @module
 */
import { decide, pendingDeadline, raiseIfDue } from "./alarm_step.ts";
import type { CompiledExpression } from "./compile.ts";
import { RuleFault } from "./errors.ts";
import { evaluateExpression } from "./expression_eval.ts";
import type { KindImpl } from "./kind.ts";

/** The expression kind. A missing field leaves the rule unevaluated this time. */
export const expressionKind: KindImpl<CompiledExpression> = {
  sample(rule, st, c) {
    const r = evaluateExpression(rule.ast, c);
    if (r === undefined) return undefined;
    if (typeof r !== "boolean") {
      throw new RuleFault(
        `Expression yields ${r === null ? "null" : `a ${typeof r}`}, not a boolean`,
      );
    }
    return decide(rule, st, r, !r, null, rule.forMs, c);
  },
  time: (rule, st, c) => raiseIfDue(rule, st, rule.forMs, c),
  deadline: (rule, st) => pendingDeadline(st, rule.forMs),
};
