/**
 * `window` rules: tumbling windows aligned to multiples of `seconds` since the epoch (on
 * the message ts). A window closes when a sample of a later window arrives or `tick(now)`
 * passes its end; it then emits one point `{measurement, fields: {temp_avg, ...}, ts: start}`.
 * Samples of an already closed window are late and ignored. Booleans count as 0/1;
 * strings are ignored.
 * @module
 */
import type { CompiledWindow } from "./compile.ts";
import { RuleFault } from "./errors.ts";
import type { KindImpl } from "./kind.ts";
import type { RulesOutcome } from "./outcome.ts";
import type { RuleState } from "./state.ts";

/** Accumulator slots per field: count, sum, min, max, last. */
const STRIDE = 5;

/** The window kind. */
export const windowKind: KindImpl<CompiledWindow> = {
  sample(rule, st, c) {
    const names = rule.fields;
    let any = false;
    for (const name of names) {
      const v = c.fields[name];
      if (typeof v === "number" || typeof v === "boolean") any = true;
    }
    if (!any) return undefined;
    const start = Math.floor(c.ts / rule.windowMs) * rule.windowMs;
    const floor = st.windowStart ?? st.closedUntil;
    if (floor !== undefined && start < floor) return undefined; // late
    let acc: number[];
    if (st.windowStart === start) acc = st.acc!.slice();
    else {
      if (st.windowStart !== undefined) emit(rule, st.windowStart, st.acc!, c.out);
      acc = new Array(names.length * STRIDE).fill(0);
    }
    for (let i = 0; i < names.length; i++) {
      const v = c.fields[names[i]];
      const x = typeof v === "number" ? v : typeof v === "boolean" ? (v ? 1 : 0) : undefined;
      if (x === undefined) continue;
      const o = i * STRIDE;
      if (acc[o] === 0 || x < acc[o + 2]) acc[o + 2] = x;
      if (acc[o] === 0 || x > acc[o + 3]) acc[o + 3] = x;
      acc[o]++;
      acc[o + 1] += x;
      acc[o + 4] = x;
      if (!Number.isFinite(acc[o + 1])) throw new RuleFault(`Sum of "${names[i]}" overflowed`);
    }
    const next: RuleState = { ...st, windowStart: start, acc };
    delete next.closedUntil;
    return next;
  },
  time(rule, st, c) {
    if (st.windowStart === undefined || c.now < st.windowStart + rule.windowMs) return st;
    emit(rule, st.windowStart, st.acc!, c.out);
    const next: RuleState = { ...st, closedUntil: st.windowStart + rule.windowMs };
    delete next.windowStart;
    delete next.acc;
    return next;
  },
  deadline: (rule, st) => st.windowStart === undefined ? null : st.windowStart + rule.windowMs,
};

function emit(rule: CompiledWindow, start: number, acc: readonly number[], out: RulesOutcome) {
  const fields: Record<string, number> = {};
  let any = false;
  rule.fields.forEach((name, i) => {
    const o = i * STRIDE;
    const n = acc[o];
    if (n === 0) return;
    any = true;
    for (const agg of rule.aggs) {
      fields[`${name}_${agg}`] = agg === "avg"
        ? acc[o + 1] / n
        : agg === "min"
        ? acc[o + 2]
        : agg === "max"
        ? acc[o + 3]
        : agg === "count"
        ? n
        : acc[o + 4];
    }
  });
  if (any) out.points.push({ rule: rule.id, measurement: rule.measurement, fields, ts: start });
}
