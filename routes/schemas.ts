/**
 * Zod schemas of the HTTP API (they drive validation and the OpenAPI document).
 * @module
 */
import { z } from "@hono/zod-openapi";

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
