/**
 * `stale` rules: raised when no telemetry (or none carrying `field`) arrived for `seconds`,
 * detected by `tick`; cleared by the next such message. Silence is measured on `now`,
 * from the last such message or, before any, from when the rule first ran.
 * @module
 */
import { clear, raise } from "./alarm_step.ts";
import type { CompiledStale } from "./compile.ts";
import { type KindImpl, scalarField } from "./kind.ts";

/** The stale kind. */
export const staleKind: KindImpl<CompiledStale> = {
  sample(rule, st, c) {
    if (rule.field !== null && scalarField(c.fields, rule.field) === undefined) {
      return st.seen === undefined ? { ...st, seen: c.now } : undefined;
    }
    if (st.active) return clear(rule, { ...st, seen: c.now }, null, c.ts, c.out);
    return st.seen === c.now ? st : { ...st, seen: c.now };
  },
  time(rule, st, c) {
    if (st.seen === undefined) return { ...st, seen: c.now };
    if (!st.active && c.now - st.seen >= rule.ms) return raise(rule, st, null, c.now, c.out);
    return st;
  },
  deadline(rule, st) {
    if (st.active) return null;
    return st.seen === undefined ? 0 : st.seen + rule.ms;
  },
};
