/**
 * Validation of device profiles: `parseProfile` checks the shape (zod), the limits and the
 * cross-field rules, names every problem by its path (`rules[2].op`), and compiles the
 * profile for cheap evaluation.
 * @module
 */
import { z } from "zod";
import { type CompiledProfile, compileProfile } from "./compile.ts";
import { ExpressionError } from "./errors.ts";
import { parseCondition } from "./expression_check.ts";
import {
  MAX_PROFILE_BYTES,
  MAX_RULES,
  type Profile,
  ProfileSchema,
  type Rule,
  RuleSchema,
} from "./profile_schema.ts";

/** One problem with a profile: where (`rules[2].op`, `""` for the whole profile) and what. */
export interface ProfileIssue {
  path: string;
  message: string;
}

/** Result of {@linkcode parseProfile}. */
export type ParseProfileResult =
  | { ok: true; profile: CompiledProfile }
  | { ok: false; issues: ProfileIssue[] };

const TopSchema = z.strictObject({
  description: ProfileSchema.shape.description,
  rules: z.array(z.unknown()).max(MAX_RULES),
  tags: ProfileSchema.shape.tags,
});

/**
 * Validate and compile a profile (the parsed JSON body of `PUT /v1/profiles/{name}`).
 * Every issue is reported, not just the first.
 *
 * @example
 * ```ts
 * const r = parseProfile({ rules: [{ id: "overheat", kind: "threshold", field: "temp",
 *   op: ">", value: 80, clear: 75, severity: "critical" }] });
 * if (!r.ok) console.log(r.issues); // [{ path: "rules[0].op", message: "..." }]
 * ```
 */
export function parseProfile(input: unknown): ParseProfileResult {
  let bytes: number;
  try {
    bytes = new TextEncoder().encode(JSON.stringify(input) ?? "").byteLength;
  } catch {
    return fail([{ path: "", message: "Profile is not JSON" }]);
  }
  if (bytes > MAX_PROFILE_BYTES) {
    return fail([{
      path: "",
      message: `Profile is ${bytes} bytes as JSON, more than ${MAX_PROFILE_BYTES}`,
    }]);
  }
  const top = TopSchema.safeParse(input);
  if (!top.success) return fail(zodIssues(top.error.issues, []));
  const issues: ProfileIssue[] = [];
  const rules: Rule[] = [];
  top.data.rules.forEach((raw, i) => {
    const r = RuleSchema.safeParse(raw);
    if (!r.success) issues.push(...zodIssues(r.error.issues, ["rules", i]));
    else {
      issues.push(...ruleIssues(r.data, i));
      rules.push(r.data);
    }
  });
  issues.push(...crossIssues(top.data.rules));
  if (issues.length > 0) return fail(issues);
  const profile: Profile = top.data.description === undefined
    ? { rules }
    : { description: top.data.description, rules };
  if (top.data.tags !== undefined) profile.tags = top.data.tags;
  return { ok: true, profile: compileProfile(profile) };
}

function fail(issues: ProfileIssue[]): ParseProfileResult {
  return { ok: false, issues };
}

/**
 * Where a threshold's clear level must lie: on the far side of the raise level, and never
 * where raise and clear conditions both hold (`>=` 80 clearing at `<=` 80 would flap at 80).
 */
const CLEAR_SIDE: Record<string, [string, (clear: number, value: number) => boolean] | null> = {
  ">": ["<=", (c, v) => c <= v],
  ">=": ["<", (c, v) => c < v],
  "<": [">=", (c, v) => c >= v],
  "<=": [">", (c, v) => c > v],
  "==": null,
  "!=": null,
};

/** Checks of one rule beyond its shape. */
function ruleIssues(r: Rule, i: number): ProfileIssue[] {
  const at = (key: string) => formatPath(["rules", i, key]);
  const out: ProfileIssue[] = [];
  if (r.kind === "threshold" && r.clear !== undefined) {
    const side = CLEAR_SIDE[r.op];
    if (side === null) {
      out.push({ path: at("clear"), message: `Hysteresis needs an ordering op, not "${r.op}"` });
    } else if (!side[1](r.clear, r.value)) {
      out.push({
        path: at("clear"),
        message: `With op "${r.op}" the clear level must be ${side[0]} ${r.value}, got ${r.clear}`,
      });
    }
  }
  if (r.kind === "expression") {
    try {
      parseCondition(r.expr);
    } catch (e) {
      if (!(e instanceof ExpressionError)) throw e;
      out.push({ path: at("expr"), message: e.message });
    }
  }
  if ((r.kind === "deadband" || r.kind === "window") && r.actions?.length) {
    out.push({
      path: at("actions"),
      message: `A ${r.kind} rule raises no alarm, so it cannot run actions`,
    });
  }
  return out;
}

/** Checks across rules: unique ids, at most one deadband per field. */
function crossIssues(raw: unknown[]): ProfileIssue[] {
  const out: ProfileIssue[] = [];
  const ids = new Map<string, number>();
  const deadbands = new Map<string, number>();
  raw.forEach((r, i) => {
    if (r === null || typeof r !== "object") return;
    const { id, kind, field } = r as Record<string, unknown>;
    if (typeof id === "string") {
      const first = ids.get(id);
      if (first === undefined) ids.set(id, i);
      else {
        out.push({
          path: formatPath(["rules", i, "id"]),
          message: `Duplicate rule id "${id}" (also rules[${first}])`,
        });
      }
    }
    if (kind === "deadband" && typeof field === "string") {
      const first = deadbands.get(field);
      if (first === undefined) deadbands.set(field, i);
      else {
        out.push({
          path: formatPath(["rules", i, "field"]),
          message: `Field "${field}" already has a deadband rule (rules[${first}])`,
        });
      }
    }
  });
  return out;
}

/** zod issues as profile issues; unknown keys become one issue each, at their own path. */
function zodIssues(issues: z.core.$ZodIssue[], prefix: PropertyKey[]): ProfileIssue[] {
  const out: ProfileIssue[] = [];
  for (const iss of issues) {
    const path = [...prefix, ...iss.path];
    if (iss.code === "unrecognized_keys") {
      for (const k of iss.keys) {
        out.push({ path: formatPath([...path, k]), message: "Unknown field" });
      }
    } else {
      out.push({ path: formatPath(path), message: iss.message });
    }
  }
  return out;
}

/** `["rules", 2, "op"]` → `rules[2].op`; odd keys are quoted: `headers["X-Key"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let s = "";
  for (const k of path) {
    if (typeof k === "number") s += `[${k}]`;
    else if (typeof k === "string" && /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(k)) {
      s += s === "" ? k : `.${k}`;
    } else s += `[${JSON.stringify(String(k))}]`;
  }
  return s;
}
