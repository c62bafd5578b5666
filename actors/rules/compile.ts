/**
 * Compiled profiles: validated rules turned into what evaluation needs per message —
 * parsed expression ASTs, comparison functions, durations in ms, actions split by trigger.
 * @module
 */
import type { Expr } from "./expression.ts";
import { parseCondition } from "./expression_check.ts";
import { fingerprint } from "./hash.ts";
import type { Aggregate, Profile, Rule, RuleAction, RuleKind, Severity } from "./profile_schema.ts";
import type { RuleState } from "./state.ts";

/** What every compiled rule has. */
export interface CompiledRuleBase {
  id: string;
  kind: RuleKind;
  /** Fingerprint of the definition; a changed definition restarts the rule's state. */
  hash: string;
  /** True for the kinds that raise alarms (all but deadband and window). */
  alarm: boolean;
  severity: Severity;
  /** Actions on raise / on clear. */
  onRaise: readonly RuleAction[];
  onClear: readonly RuleAction[];
  /** The initial state (shared, frozen). */
  fresh: Readonly<RuleState>;
  /** The rule as validated, defaults filled in. */
  source: Rule;
}

/** A compiled `threshold` rule. */
export interface CompiledThreshold extends CompiledRuleBase {
  kind: "threshold";
  field: string;
  /** The raise condition. */
  test: (v: number) => boolean;
  /** The clear condition while raised (hysteresis, or the negated raise condition). */
  release: (v: number) => boolean;
  forMs: number;
}

/** A compiled `rate` rule. */
export interface CompiledRate extends CompiledRuleBase {
  kind: "rate";
  field: string;
  limit: number;
  windowMs: number;
  direction: "up" | "down" | "both";
  /** Retained samples are at least this far apart (bounds the state to ~32 samples). */
  spacingMs: number;
}

/** A compiled `deadband` rule. */
export interface CompiledDeadband extends CompiledRuleBase {
  kind: "deadband";
  field: string;
  band: number;
  /** Write anyway after this long without a write; null = never. */
  maxMs: number | null;
}

/** A compiled `window` rule. */
export interface CompiledWindow extends CompiledRuleBase {
  kind: "window";
  fields: readonly string[];
  windowMs: number;
  aggs: readonly Aggregate[];
  measurement: string;
}

/** A compiled `anomaly` rule. */
export interface CompiledAnomaly extends CompiledRuleBase {
  kind: "anomaly";
  field: string;
  alpha: number;
  zLimit: number;
  warmup: number;
}

/** A compiled `stale` rule. */
export interface CompiledStale extends CompiledRuleBase {
  kind: "stale";
  /** Only messages carrying this field count; null = any telemetry. */
  field: string | null;
  ms: number;
}

/** A compiled `expression` rule. */
export interface CompiledExpression extends CompiledRuleBase {
  kind: "expression";
  ast: Expr;
  forMs: number;
}

/** Any compiled rule. */
export type CompiledRule =
  | CompiledThreshold
  | CompiledRate
  | CompiledDeadband
  | CompiledWindow
  | CompiledAnomaly
  | CompiledStale
  | CompiledExpression;

/** A profile ready for evaluation. Build it with `parseProfile`. */
export interface CompiledProfile {
  /** The validated profile, defaults filled in (store and serve this). */
  readonly source: Profile;
  /** Fingerprint of the whole profile. */
  readonly hash: string;
  /** All rules in profile order, disabled ones included. */
  readonly rules: readonly CompiledRule[];
  /** The enabled rules, in profile order. */
  readonly enabled: readonly CompiledRule[];
  /** Rules by id. */
  readonly byId: ReadonlyMap<string, CompiledRule>;
  /** MQTT 5 user properties that become tags of a telemetry point (`Profile.tags`). */
  readonly tags: readonly string[];
}

const TESTS: Record<string, (x: number) => (v: number) => boolean> = {
  ">": (x) => (v) => v > x,
  ">=": (x) => (v) => v >= x,
  "<": (x) => (v) => v < x,
  "<=": (x) => (v) => v <= x,
  "==": (x) => (v) => v === x,
  "!=": (x) => (v) => v !== x,
};

/**
 * Compile a validated profile. Use `parseProfile`, which validates first.
 * @throws {ExpressionError} if an expression does not parse (not validated).
 */
export function compileProfile(profile: Profile): CompiledProfile {
  const rules = profile.rules.map(compileRule);
  return {
    source: profile,
    hash: fingerprint(profile),
    rules,
    enabled: rules.filter((r) => r.source.enabled),
    byId: new Map(rules.map((r) => [r.id, r])),
    tags: profile.tags ?? [],
  };
}

function compileRule(r: Rule): CompiledRule {
  const hash = fingerprint(r);
  const actions = r.actions ?? [];
  const base = {
    id: r.id,
    hash,
    alarm: r.kind !== "deadband" && r.kind !== "window",
    severity: r.severity ?? "major",
    onRaise: actions.filter((a) => a.on === "raise"),
    onClear: actions.filter((a) => a.on === "clear"),
    fresh: Object.freeze({ def: hash }),
    source: r,
  };
  switch (r.kind) {
    case "threshold": {
      const test = TESTS[r.op](r.value);
      let release = (v: number) => !test(v);
      if (r.clear !== undefined) {
        const c = r.clear;
        release = r.op === ">" || r.op === ">=" ? (v) => v <= c : (v) => v >= c;
      }
      return { ...base, kind: r.kind, field: r.field, test, release, forMs: r.forSeconds * 1000 };
    }
    case "rate": {
      const windowMs = r.windowSeconds * 1000;
      return {
        ...base,
        kind: r.kind,
        field: r.field,
        limit: r.limit,
        windowMs,
        direction: r.direction,
        spacingMs: windowMs / 32,
      };
    }
    case "deadband":
      return {
        ...base,
        kind: r.kind,
        field: r.field,
        band: r.band,
        maxMs: r.maxSeconds === undefined ? null : r.maxSeconds * 1000,
      };
    case "window":
      return {
        ...base,
        kind: r.kind,
        fields: [...new Set(r.fields)],
        windowMs: Math.round(r.seconds * 1000),
        aggs: [...new Set(r.aggs)],
        measurement: r.measurement,
      };
    case "anomaly":
      return {
        ...base,
        kind: r.kind,
        field: r.field,
        alpha: r.alpha,
        zLimit: r.zLimit,
        warmup: r.warmup,
      };
    case "stale":
      return { ...base, kind: r.kind, field: r.field ?? null, ms: r.seconds * 1000 };
    case "expression":
      return { ...base, kind: r.kind, ast: parseCondition(r.expr), forMs: r.forSeconds * 1000 };
  }
}
