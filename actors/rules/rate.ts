/**
 * `rate` rules: change per second between the oldest and the newest sample of a sliding
 * window; raised while it exceeds the limit (in the watched direction).
 *
 * The state keeps samples at least `windowSeconds / 32` apart (plus the bound of 64), so
 * "the oldest sample in the window" is exact to within 1/32 of the window and the state
 * stays small whatever the message rate.
 * @module
 */
import { decide } from "./alarm_step.ts";
import type { CompiledRate } from "./compile.ts";
import { RuleFault } from "./errors.ts";
import { type KindImpl, numberField } from "./kind.ts";
import type { RuleState } from "./state.ts";

const MAX_SAMPLES = 64;

/**
 * The rate kind. Not evaluated while the window holds no earlier sample; a sample older
 * than the newest retained one is ignored.
 */
export const rateKind: KindImpl<CompiledRate> = {
  sample(rule, st, c) {
    const v = numberField(c.fields, rule.field);
    if (v === undefined) return undefined;
    const t = c.ts;
    const s = st.samples ?? [];
    const n = s.length;
    if (n > 0 && t < s[n - 2]) return undefined;
    let i = 0;
    const from = t - rule.windowMs;
    while (i < n && s[i] < from) i += 2;
    const keep = i === n || t - s[n - 2] >= rule.spacingMs;
    let next: Readonly<RuleState> = st;
    if (i > 0 || keep) {
      const samples = s.slice(Math.max(i, n + (keep ? 2 : 0) - 2 * MAX_SAMPLES));
      if (keep) samples.push(t, v);
      next = { ...st, samples };
    }
    if (i === n || t === s[i]) return next as RuleState; // no earlier sample in the window
    const perSecond = (v - s[i + 1]) / ((t - s[i]) / 1000);
    if (!Number.isFinite(perSecond)) throw new RuleFault(`Rate of "${rule.field}" overflowed`);
    const over = rule.direction === "up"
      ? perSecond > rule.limit
      : rule.direction === "down"
      ? -perSecond > rule.limit
      : Math.abs(perSecond) > rule.limit;
    return decide(rule, next, over, !over, perSecond, 0, c);
  },
};
