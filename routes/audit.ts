/**
 * Audit routes: the newest audit entries, filtered by time, actor and action. Times go out as
 * RFC 3339. Who may read them is decided by the auth layer in front, not here.
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { AuditEntry, AuditQuery } from "../src/security/audit_entry.ts";
import { errors, iso } from "./schemas.ts";
import { validationHook } from "./validation.ts";

/** What the routes read from: an {@linkcode AuditLog} or a fake. */
export interface AuditSource {
  query(q: AuditQuery): Promise<AuditEntry[]>;
}

const MS = /^-?\d{1,16}$/;
const ISO = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/i;

/** `since` as ms since the epoch: digits are ms, else an RFC 3339 time or date; else undefined. */
export function parseSince(s: string): number | undefined {
  const ms = MS.test(s) ? Number(s) : ISO.test(s) ? Date.parse(s) : Number.NaN;
  return Number.isFinite(ms) && Number.isFinite(new Date(ms).getTime()) ? ms : undefined;
}

/** Audit query parameters. */
export const AuditQueryParams = z.object({
  since: z.string().refine(
    (s) => parseSince(s) !== undefined,
    "must be an RFC 3339 time (2024-05-01T12:00:00Z) or milliseconds since the epoch",
  ).optional().openapi({
    description: "Only entries at or after this time: RFC 3339, or ms since the epoch",
    example: "2024-05-01T12:00:00Z",
  }),
  actor: z.string().min(1).max(256).optional().openapi({
    description: "Exact principal id",
    example: "jwt:alice",
  }),
  action: z.string().min(1).max(128).optional().openapi({
    description: "Exact action, or a prefix ending with `.`",
    example: "credential.",
  }),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/** An audit entry; `ts` as RFC 3339. */
export const AuditEntrySchema = z.object({
  ts: z.iso.datetime().openapi({ example: "2024-05-01T12:00:00.000Z" }),
  requestId: z.string().optional(),
  actor: z.string().openapi({ example: "jwt:alice" }),
  role: z.string().optional(),
  action: z.string().openapi({ example: "credential.revoke" }),
  target: z.string().optional(),
  result: z.enum(["ok", "denied", "failed"]),
  detail: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional()
    .openapi({ description: "Values of keys naming secrets are stored as `[redacted]`" }),
}).openapi("AuditEntry");

/** Newest audit entries first. */
export const AuditPage = z.object({ items: z.array(AuditEntrySchema) }).openapi("AuditPage");

const listAudit = createRoute({
  method: "get",
  path: "/",
  tags: ["audit"],
  summary: "Newest audit entries first, filtered by time, actor and action (prefix with `.`)",
  request: { query: AuditQueryParams },
  responses: {
    200: {
      description: "Audit entries, newest first",
      content: { "application/json": { schema: AuditPage } },
    },
    ...errors(400),
  },
});

/** An entry with `ts` as RFC 3339. */
export const auditView = (e: AuditEntry) => ({ ...e, ts: iso(e.ts) });

/** Audit routes, mounted at `/v1/audit`. */
export function auditRoutes(log: AuditSource): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  app.openapi(listAudit, async (c) => {
    const { since, actor, action, limit } = c.req.valid("query");
    const items = await log.query({
      ...(since === undefined ? {} : { since: parseSince(since) }),
      ...(actor === undefined ? {} : { actor }),
      ...(action === undefined ? {} : { action }),
      limit,
    });
    return c.json({ items: items.map(auditView) }, 200);
  });
  return app;
}
