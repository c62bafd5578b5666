/**
 * The rules engine: pure functions from (profile, state, message or time) to a new state
 * and the effects for the runtime — alarm transitions, actions, rollup points, fields to
 * suppress, faults. No I/O; time is passed in.
 *
 * Cost per message: one pass over the enabled rules; a rule whose state does not change
 * allocates nothing, a rule whose state changes gets one fresh state object, and the map of
 * rule states is copied once per message at most (copy on write).
 * @module
 */
import { anomalyKind } from "./anomaly.ts";
import type { CompiledProfile, CompiledRule } from "./compile.ts";
import { deadbandKind } from "./deadband.ts";
import { expressionKind } from "./expression_rule.ts";
import type { Ctx, KindImpl } from "./kind.ts";
import type { RulesOutcome } from "./outcome.ts";
import { rateKind } from "./rate.ts";
import type { RulesState, RuleState, Scalar } from "./state.ts";
import { staleKind } from "./stale.ts";
import { thresholdKind } from "./threshold.ts";
import { windowKind } from "./window.ts";

/** One telemetry message as the engine sees it. */
export interface RulesInput {
  /** The message's telemetry fields. */
  fields: Readonly<Record<string, Scalar>>;
  /** The twin's reported state after the message (expressions look up nested fields here). */
  reported: unknown;
  /** The message's timestamp (ms): its `ts`, else its arrival time. */
  ts: number;
}

const KINDS: Record<CompiledRule["kind"], KindImpl<never>> = {
  threshold: thresholdKind,
  rate: rateKind,
  deadband: deadbandKind,
  window: windowKind,
  anomaly: anomalyKind,
  stale: staleKind,
  expression: expressionKind,
};
const NO_FIELDS: Readonly<Record<string, Scalar>> = Object.freeze({});
const MAX_FAULT_MESSAGE = 200;

/**
 * Evaluate the profile's enabled rules against one telemetry message.
 *
 * `state` may come from an older profile (hot reload): rules that were removed or disabled
 * lose their state (a raised alarm is cleared), rules whose definition changed restart
 * (a raised alarm stays raised until the new definition clears it).
 *
 * @example
 * ```ts
 * const r = parseProfile(json);
 * if (!r.ok) throw new Error("bad profile");
 * let state: RulesState | undefined;
 * const out = evaluate(r.profile, state, { fields: { temp: 91 }, reported, ts }, Date.now());
 * state = out.state; // then persist it; execute out.transitions, out.actions, out.points
 * ```
 */
export function evaluate(
  profile: CompiledProfile,
  state: RulesState | undefined,
  input: RulesInput,
  now: number,
): RulesOutcome {
  const out = outcome(state, profile);
  const c: Ctx = { now, ts: input.ts, fields: input.fields, reported: input.reported, out };
  return run(profile, state, c, false);
}

/**
 * Let time pass: raise alarms whose `forSeconds` delay ran out, raise `stale` alarms, close
 * windows whose end passed. Works for a twin that sent nothing for a long time.
 */
export function tick(
  profile: CompiledProfile,
  state: RulesState | undefined,
  now: number,
): RulesOutcome {
  const out = outcome(state, profile);
  const c: Ctx = { now, ts: now, fields: NO_FIELDS, reported: undefined, out };
  return run(profile, state, c, true);
}

/**
 * The earliest time `tick` could change something (ms), or null when only a message can.
 * Returns 0 ("at once") when the state belongs to another profile version (the reload is
 * applied by the next `tick`) or a `stale` rule has not started watching yet.
 */
export function nextDeadline(
  profile: CompiledProfile,
  state: RulesState | undefined,
): number | null {
  if (state !== undefined && state.profile !== profile.hash) return 0;
  let next: number | null = null;
  for (const rule of profile.enabled) {
    const kind = KINDS[rule.kind];
    if (!kind.deadline) continue;
    const d = kind.deadline(rule as never, state?.rules[rule.id] ?? rule.fresh);
    if (d !== null && (next === null || d < next)) next = d;
  }
  return next;
}

function outcome(state: RulesState | undefined, profile: CompiledProfile): RulesOutcome {
  return {
    state: state ?? { profile: profile.hash, rules: {} },
    transitions: [],
    suppressed: [],
    points: [],
    actions: [],
    faults: [],
  };
}

function run(
  profile: CompiledProfile,
  state: RulesState | undefined,
  c: Ctx,
  timed: boolean,
): RulesOutcome {
  const out = c.out;
  let rules = state ? state.rules : {};
  let owned = state === undefined;
  if (state !== undefined && state.profile !== profile.hash) {
    rules = reconcile(profile, state.rules, c);
    owned = true;
  }
  for (const rule of profile.enabled) {
    const kind = KINDS[rule.kind];
    const prev: Readonly<RuleState> | undefined = rules[rule.id];
    const st = prev ?? rule.fresh;
    let next: RuleState | undefined;
    if (timed) {
      if (!kind.time || !kind.deadline) continue;
      const due = kind.deadline(rule as never, st);
      if (due === null || due > c.now) continue;
    }
    const t0 = out.transitions.length;
    const a0 = out.actions.length;
    const p0 = out.points.length;
    const s0 = out.suppressed.length;
    try {
      if (timed) next = kind.time!(rule as never, st, c);
      else {
        next = kind.sample(rule as never, st, c);
        if (next?.fault) {
          if (next === st) next = { ...st };
          delete next.fault;
        }
      }
    } catch (e) {
      // Drop what the failed rule emitted before it threw.
      out.transitions.length = t0;
      out.actions.length = a0;
      out.points.length = p0;
      out.suppressed.length = s0;
      next = faulted(st, e, c.now);
      out.faults.push({ rule: rule.id, message: next.fault!.message, count: next.fault!.count });
    }
    if (next === undefined || next === st) continue;
    if (!owned) {
      rules = { ...rules };
      owned = true;
    }
    rules[rule.id] = next;
  }
  if (owned) out.state = { profile: profile.hash, rules };
  return out;
}

/**
 * Carry state over to another profile version: unchanged rules keep their state, changed
 * ones restart but keep a raised alarm, removed or disabled ones (and alarm rules turned
 * into deadband or window rules) are dropped, clearing a raised alarm.
 */
function reconcile(
  profile: CompiledProfile,
  old: Readonly<Record<string, RuleState>>,
  c: Ctx,
): Record<string, RuleState> {
  const rules: Record<string, RuleState> = {};
  for (const id of Object.keys(old)) {
    const st = old[id];
    const rule = profile.byId.get(id);
    const live = rule?.source.enabled ? rule : undefined;
    if (live && live.hash === st.def) rules[id] = st;
    else if (st.active) {
      if (live?.alarm) {
        rules[id] = { def: live.hash, active: true, severity: st.severity ?? live.severity };
      } else {
        c.out.transitions.push({
          rule: id,
          kind: "clear",
          severity: st.severity ?? "major",
          value: null,
          ts: c.now,
        });
      }
    }
  }
  return rules;
}

function faulted(st: Readonly<RuleState>, e: unknown, now: number): RuleState {
  const raw = e instanceof Error ? e.message : String(e);
  const message = raw.length > MAX_FAULT_MESSAGE ? raw.slice(0, MAX_FAULT_MESSAGE - 1) + "…" : raw;
  return { ...st, fault: { message, count: (st.fault?.count ?? 0) + 1, at: now } };
}
