/**
 * `deadband` rules: a change smaller than the band from the last *written* value is
 * suppressed (not written to InfluxDB, not streamed). Band 0 suppresses repeats only.
 * @module
 */
import type { CompiledDeadband } from "./compile.ts";
import { type KindImpl, scalarField } from "./kind.ts";

/**
 * The deadband kind. Numbers pass when `|v - written| >= band` (and differ); strings and
 * booleans pass when they differ; anything passes after `maxSeconds` without a write.
 */
export const deadbandKind: KindImpl<CompiledDeadband> = {
  sample(rule, st, c) {
    const v = scalarField(c.fields, rule.field);
    if (v === undefined) return undefined;
    const w = st.written;
    let pass: boolean;
    if (w === undefined) pass = true;
    else if (typeof v === "number" && typeof w === "number") {
      const d = Math.abs(v - w);
      pass = d !== 0 && d >= rule.band;
    } else pass = v !== w;
    if (!pass && rule.maxMs !== null && c.ts - (st.writtenAt ?? 0) >= rule.maxMs) pass = true;
    if (pass) return { ...st, written: v, writtenAt: c.ts };
    c.out.suppressed.push(rule.field);
    return st;
  },
};
