/**
 * `anomaly` rules: exponentially weighted mean and variance of a field; after the warm-up,
 * raised while `|v - mean| / sd > zLimit`, judged against the statistics *before* `v`.
 * Every sample updates the statistics, anomalous or not.
 * @module
 */
import { decide } from "./alarm_step.ts";
import type { CompiledAnomaly } from "./compile.ts";
import { RuleFault } from "./errors.ts";
import { type KindImpl, numberField } from "./kind.ts";

/**
 * The anomaly kind. With zero variance (a constant signal so far) any different value is
 * an anomaly (z = ∞) and an equal one is not.
 */
export const anomalyKind: KindImpl<CompiledAnomaly> = {
  sample(rule, st, c) {
    const v = numberField(c.fields, rule.field);
    if (v === undefined) return undefined;
    const n = st.n ?? 0;
    if (n === 0) return { ...st, n: 1, mean: v, variance: 0 };
    const mean = st.mean ?? v;
    const variance = st.variance ?? 0;
    const d = v - mean;
    const incr = rule.alpha * d;
    const next = {
      ...st,
      n: n < rule.warmup ? n + 1 : n,
      mean: mean + incr,
      variance: (1 - rule.alpha) * (variance + d * incr),
    };
    if (!Number.isFinite(next.mean) || !Number.isFinite(next.variance)) {
      throw new RuleFault(`Statistics of "${rule.field}" overflowed`);
    }
    if (n < rule.warmup) return next;
    const sd = Math.sqrt(variance);
    const z = sd > 0 ? Math.abs(d) / sd : d === 0 ? 0 : Infinity;
    const out = z > rule.zLimit;
    return decide(rule, next, out, !out, v, 0, c);
  },
};
