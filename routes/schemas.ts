/**
 * Zod schemas of the HTTP API (they drive validation and the OpenAPI document).
 * @module
 */
import { z } from "@hono/zod-openapi";
import { MAX_ACK_COMMENT, ProfileSchema, SEVERITIES } from "../actors/rules/mod.ts";

/** Error envelope. */
export const ErrorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string() }),
}).openapi("Error");

/** Twin id path parameter. */
export const IdParam = z.object({
  id: z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, "twin id must be 1-128 of A-Z a-z 0-9 _ - . :")
    .openapi({ param: { name: "id", in: "path" }, example: "press-7" }),
});

const Json = z.record(z.string(), z.unknown());

/** A twin. */
export const TwinSchema = z.object({
  id: z.string(),
  version: z.number().int(),
  attributes: Json,
  reported: Json,
  desired: Json,
  delta: Json,
  metadata: z.object({
    reported: z.record(z.string(), z.object({ ts: z.number() })),
    desired: z.record(z.string(), z.object({ ts: z.number() })),
    createdAt: z.number(),
    updatedAt: z.number(),
  }),
  connectivity: z.object({
    status: z.enum(["online", "offline", "unknown"]),
    since: z.number().nullable(),
  }),
  alarms: z.array(z.unknown()),
}).openapi("Twin");

/** Attribute values: scalars (they become InfluxDB tags and list filters). */
export const AttributesBody = z.object({
  attributes: z.record(
    z.string().min(1).max(128),
    z.union([z.string().max(1024), z.number(), z.boolean()]),
  ),
}).openapi("Attributes");

/** JSON merge patch. */
export const MergePatch = Json.openapi("MergePatch");

/** Page of twins. */
export const TwinPage = z.object({
  items: z.array(TwinSchema),
  cursor: z.string().optional().openapi({
    description: "Cursor of the next page; absent at the end",
  }),
}).openapi("TwinPage");

/** History query. */
export const HistoryParams = z.object({
  field: z.string().min(1).max(128),
  from: z.string().optional().openapi({ description: "RFC 3339 time; default 1 hour ago" }),
  to: z.string().optional(),
  every: z.string().regex(/^\d{1,6}(ms|s|m|h|d|w)$/, "every must look like 10s, 1m, 1h").optional(),
  agg: z.enum(["mean", "min", "max", "sum", "count", "first", "last", "median"]).optional(),
});

/** History answer. */
export const HistorySchema = z.object({
  twin: z.string(),
  field: z.string(),
  agg: z.string().nullable(),
  every: z.string().nullable(),
  points: z.array(z.object({ ts: z.string(), value: z.unknown() })),
}).openapi("History");

/** Standard error responses. */
export const errors = (...codes: number[]) =>
  Object.fromEntries(
    codes.map((c) => [c, {
      description: {
        400: "Bad request",
        404: "Twin not found",
        412: "Version conflict",
        413: "Body too large",
        503: "Unavailable",
        502: "Upstream failed",
      }[c] ?? "Error",
      content: { "application/json": { schema: ErrorSchema } },
    }]),
  );

/** A 404 response whose description names what was not found (`errors(404)` says "Twin"). */
export const notFound = (what: string) => ({
  404: {
    description: `${what} not found`,
    content: { "application/json": { schema: ErrorSchema } },
  },
});

/** A time as RFC 3339 (UTC), e.g. `2024-05-01T12:00:00.000Z`. */
const Time = z.iso.datetime().openapi({ example: "2024-05-01T12:00:00.000Z" });

/** Profile name path parameter. */
export const ProfileNameParam = z.object({
  name: z.string().regex(
    /^[A-Za-z0-9_.-]{1,64}$/,
    "profile name must be 1-64 of A-Z a-z 0-9 _ - .",
  ).openapi({ param: { name: "name", in: "path" }, example: "press" }),
});

/** A profile document as sent; the service validates it and names the first bad field. */
export const ProfileBody = Json.openapi("ProfileDocument", {
  description: "A device profile: `{description?, rules: [...]}`, as in the Profile schema's " +
    "`profile`. Invalid documents get 400 `profile_invalid` naming the field (`rules[2].op`).",
  example: {
    rules: [{
      id: "overheat",
      kind: "threshold",
      field: "temp",
      op: ">",
      value: 80,
      clear: 75,
      forSeconds: 0,
      severity: "critical",
    }],
  },
});

/** A stored profile as the API shows it. */
export const ProfileViewSchema = z.object({
  name: z.string(),
  profile: ProfileSchema,
  updatedAt: Time,
  hash: z.string().openapi({ description: "Fingerprint of the profile; changes with each edit" }),
  status: z.object({
    rules: z.array(z.object({
      rule: z.string(),
      faults: z.number().int().openapi({ description: "Evaluations that failed" }),
      lastFault: z.string(),
      at: Time.openapi({ description: "When it last failed" }),
    })),
  }).openapi({
    description: "Rules that faulted on the answering node since the profile last changed",
  }),
}).openapi("Profile");

/** Every profile. */
export const ProfileList = z.object({ items: z.array(ProfileViewSchema) }).openapi("ProfileList");

const TWIN_ID_RE = /^[A-Za-z0-9_.:-]{1,128}$/;

/** Alarm id path parameter: `{twin}:{rule}:{seq}` (twin ids may hold `:` and `.`). */
export const AlarmIdParam = z.object({
  id: z.string().regex(
    /^[A-Za-z0-9_.:-]{1,128}:[A-Za-z0-9_-]{1,64}:(0|[1-9][0-9]{0,15})$/,
    "alarm id must look like {twin}:{rule}:{seq}",
  ).openapi({ param: { name: "id", in: "path" }, example: "press-7:overheat:3" }),
});

/** An alarm; times as RFC 3339. */
export const AlarmSchema = z.object({
  id: z.string().openapi({ example: "press-7:overheat:3" }),
  twin: z.string(),
  rule: z.string(),
  severity: z.enum(SEVERITIES),
  state: z.enum(["active", "acknowledged", "cleared"]).openapi({
    description: "`acknowledged`: active and acknowledged; a cleared alarm stays `cleared`",
  }),
  acknowledged: z.boolean(),
  raisedAt: Time,
  clearedAt: Time.nullable(),
  value: z.union([z.number(), z.boolean(), z.string()]).nullable().openapi({
    description: "The value at the (latest) raise",
  }),
  raiseCount: z.number().int().openapi({ description: "Raises while it was open" }),
  ackedAt: Time.optional(),
  ackComment: z.string().optional(),
  updatedAt: Time,
}).openapi("Alarm");

/** Alarm list query. */
export const AlarmQueryParams = z.object({
  state: z.enum(["active", "acknowledged", "cleared"]).optional(),
  twin: z.string().regex(TWIN_ID_RE, "twin must be 1-128 of A-Z a-z 0-9 _ - . :").optional(),
  severity: z.enum(SEVERITIES).optional(),
  site: z.string().min(1).max(128).optional().openapi({
    description: "Only twins whose site attribute is this (required for site-scoped callers)",
  }),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().min(1).max(1024).optional().openapi({
    description: "The `next` of the previous page",
  }),
});

/** Page of alarms. */
export const AlarmPage = z.object({
  items: z.array(AlarmSchema),
  next: z.string().optional().openapi({
    description: "Cursor of the next page; absent at the end",
  }),
}).openapi("AlarmPage");

/** Acknowledgement body (optional; an empty body is fine). */
export const AckBody = z.object({
  comment: z.string().max(MAX_ACK_COMMENT).optional(),
}).openapi("AlarmAck");

/** An OpenAPI JSON response: `schema` under `application/json`. */
export const json = (schema: z.ZodType, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

/** A time (ms since the epoch) as the API shows it: RFC 3339. */
export const iso = (ms: number) => new Date(ms).toISOString();
