/**
 * Test helpers for the rules engine (not exported from `mod.ts`). Times are given in
 * seconds and passed to the engine in ms; a message's `ts` equals `now`.
 * @module
 */
import type { CompiledProfile } from "./compile.ts";
import { evaluate, nextDeadline, tick } from "./engine.ts";
import type { RulesOutcome } from "./outcome.ts";
import { parseProfile } from "./profile.ts";
import type { RulesState, Scalar } from "./state.ts";

/** Compile rules into a profile, failing loudly on issues. */
export function compile(...rules: unknown[]): CompiledProfile {
  const r = parseProfile({ rules });
  if (!r.ok) throw new Error(`profile invalid: ${JSON.stringify(r.issues)}`);
  return r.profile;
}

/** Drives one twin's rules: messages and ticks at given seconds; keeps the state. */
export class Twin {
  state: RulesState | undefined;
  reported: Record<string, unknown> = {};
  constructor(public profile: CompiledProfile) {}

  /** A telemetry message at `sec` seconds (ts = now unless `tsSec` is given). */
  msg(sec: number, fields: Record<string, Scalar>, tsSec = sec): RulesOutcome {
    this.reported = { ...this.reported, ...fields };
    const out = evaluate(
      this.profile,
      this.state,
      { fields, reported: this.reported, ts: tsSec * 1000 },
      sec * 1000,
    );
    this.state = out.state;
    return out;
  }

  /** A timer tick at `sec` seconds. */
  tick(sec: number): RulesOutcome {
    const out = tick(this.profile, this.state, sec * 1000);
    this.state = out.state;
    return out;
  }

  /** The next deadline, in seconds (null = none). */
  deadline(): number | null {
    const d = nextDeadline(this.profile, this.state);
    return d === null ? null : d / 1000;
  }
}

/** Transitions as short strings: `raise:overheat=91@1000`. */
export function trans(out: RulesOutcome): string[] {
  return out.transitions.map((t) => `${t.kind}:${t.rule}=${t.value}@${t.ts}`);
}
