/**
 * The device profile's JSON shape as zod schemas (also usable for OpenAPI documents).
 * Cross-field checks (unique ids, hysteresis side, expressions) live in `profile.ts`.
 * @module
 */
import { z } from "zod";

/** Alarm severities, most severe first. */
export const SEVERITIES = ["critical", "major", "minor", "warning", "info"] as const;
/** An alarm severity. */
export type Severity = typeof SEVERITIES[number];

/** Aggregates a window rule can compute. */
export const AGGREGATES = ["avg", "min", "max", "count", "last"] as const;
/** A window aggregate. */
export type Aggregate = typeof AGGREGATES[number];

/** Most rules in one profile. */
export const MAX_RULES = 50;
/** Largest profile, as JSON (bytes). */
export const MAX_PROFILE_BYTES = 64 * 1024;
/** Longest rule expression (characters). */
export const MAX_EXPR_CHARS = 1000;
/** Rule ids: 1–64 characters of `A-Z a-z 0-9 _ -`. */
export const RULE_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** Longest duration a rule may name (seconds): one year. */
const MAX_SECONDS = 366 * 24 * 3600;
const seconds = z.number().positive().max(MAX_SECONDS);
const field = z.string().min(1).max(128);
const jsonObject = z.record(z.string(), z.unknown());
const on = z.enum(["raise", "clear"]).default("raise");

/** An action run when a rule's alarm is raised or cleared. */
export const ActionSchema = z.discriminatedUnion("type", [
  z.strictObject({ on, type: z.literal("desired"), patch: jsonObject }),
  z.strictObject({
    on,
    type: z.literal("command"),
    name: z.string().min(1).max(128),
    args: jsonObject.optional(),
  }),
  z.strictObject({
    on,
    type: z.literal("webhook"),
    url: z.url({ protocol: /^https?$/, error: "Must be an http or https URL" }),
    headers: z.record(z.string(), z.string()).optional(),
  }),
]);

const common = {
  id: z.string().regex(RULE_ID_RE, {
    error: "Must be 1-64 characters of A-Z a-z 0-9 _ -",
  }).refine((id) => !(id in Object.prototype), {
    // rule states are kept in plain objects keyed by id
    error: "Reserved name",
  }),
  enabled: z.boolean().default(true),
  actions: z.array(ActionSchema).max(10).optional(),
};
/** Rules that raise alarms have a severity (default `major`). */
const alarm = { ...common, severity: z.enum(SEVERITIES).default("major") };
/** Deadband and window rules raise no alarm: a severity is accepted and ignored. */
const quiet = { ...common, severity: z.enum(SEVERITIES).optional() };

/** `threshold`: compare a field with a value, with optional hysteresis and delay. */
export const ThresholdRuleSchema = z.strictObject({
  ...alarm,
  kind: z.literal("threshold"),
  field,
  op: z.enum([">", ">=", "<", "<=", "==", "!="]),
  value: z.number(),
  clear: z.number().optional(),
  forSeconds: z.number().min(0).max(MAX_SECONDS).default(0),
});

/** `rate`: change per second over a sliding window. */
export const RateRuleSchema = z.strictObject({
  ...alarm,
  kind: z.literal("rate"),
  field,
  limit: z.number().positive(),
  windowSeconds: seconds,
  direction: z.enum(["up", "down", "both"]).default("both"),
});

/** `deadband`: suppress writing small changes. */
export const DeadbandRuleSchema = z.strictObject({
  ...quiet,
  kind: z.literal("deadband"),
  field,
  band: z.number().min(0),
  maxSeconds: seconds.optional(),
});

/** `window`: tumbling-window rollups. */
export const WindowRuleSchema = z.strictObject({
  ...quiet,
  kind: z.literal("window"),
  fields: z.array(field).min(1).max(20),
  seconds: z.number().min(1).max(MAX_SECONDS),
  aggs: z.array(z.enum(AGGREGATES)).min(1).default([...AGGREGATES]),
  measurement: z.string().min(1).max(128).default("rollup"),
});

/** `anomaly`: EWMA z-score. */
export const AnomalyRuleSchema = z.strictObject({
  ...alarm,
  kind: z.literal("anomaly"),
  field,
  alpha: z.number().positive().max(1).default(0.1),
  zLimit: z.number().positive().default(3),
  warmup: z.int().min(1).max(1_000_000).default(20),
});

/** `stale`: no (matching) telemetry for a while. */
export const StaleRuleSchema = z.strictObject({
  ...alarm,
  kind: z.literal("stale"),
  seconds,
  field: field.optional(),
});

/** `expression`: a boolean expression over the twin's fields. */
export const ExpressionRuleSchema = z.strictObject({
  ...alarm,
  kind: z.literal("expression"),
  expr: z.string().min(1).max(MAX_EXPR_CHARS),
  forSeconds: z.number().min(0).max(MAX_SECONDS).default(0),
});

/** Any rule, by `kind`. */
export const RuleSchema = z.discriminatedUnion("kind", [
  ThresholdRuleSchema,
  RateRuleSchema,
  DeadbandRuleSchema,
  WindowRuleSchema,
  AnomalyRuleSchema,
  StaleRuleSchema,
  ExpressionRuleSchema,
]);

/** Most MQTT 5 user properties a profile may make InfluxDB tags (each tag multiplies series). */
export const MAX_PROPERTY_TAGS = 8;
/** Tag names taken from user properties: not `device` or `time`, not starting with `_`. */
const propertyTag = z.string().regex(/^[A-Za-z0-9.-][A-Za-z0-9_.-]{0,63}$/, {
  error: "Must be 1-64 characters of A-Z a-z 0-9 _ . - (not starting with _)",
}).refine((t) => t !== "device" && t !== "time", { error: "Reserved tag name" });

/** A device profile (`PUT /v1/profiles/{name}` body). */
export const ProfileSchema = z.strictObject({
  description: z.string().max(1000).optional(),
  rules: z.array(RuleSchema).max(MAX_RULES),
  /** MQTT 5 user properties whose values become InfluxDB tags of the telemetry point. */
  tags: z.array(propertyTag).max(MAX_PROPERTY_TAGS).refine((t) => new Set(t).size === t.length, {
    error: "Tag names must be unique",
  }).optional().describe(
    "MQTT 5 user properties of a telemetry message whose values become InfluxDB tags of its " +
      `point, e.g. ["line", "shift"] (at most ${MAX_PROPERTY_TAGS}; each tag multiplies series)`,
  ),
});

/** A profile with defaults filled in. */
export type Profile = z.output<typeof ProfileSchema>;
/** A profile as users may write it (defaults optional). */
export type ProfileInput = z.input<typeof ProfileSchema>;
/** A rule with defaults filled in. */
export type Rule = z.output<typeof RuleSchema>;
/** A rule kind. */
export type RuleKind = Rule["kind"];
/** A rule action with defaults filled in. */
export type RuleAction = z.output<typeof ActionSchema>;
