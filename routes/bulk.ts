/**
 * `POST /v1/twins:bulk` (admin): create or update many twins from a CSV or NDJSON body. The
 * answer streams NDJSON: one result per row, a progress line every `progress` rows, and a
 * summary. Mounted at `/v1` with the literal path `/twins:bulk` (mounting at
 * `/v1/twins:bulk` would make OpenAPIHono document `:bulk` as a path parameter).
 * @module
 */
import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { type BulkLine, runBulk } from "../src/mgmt/bulk.ts";
import {
  BULK_LIMITS,
  type BulkLimits,
  type BulkRow,
  ndjsonRows,
  openCsv,
} from "../src/mgmt/bulk_rows.ts";
import { BulkLimitError } from "../src/mgmt/bulk_text.ts";
import type {
  AuditSink,
  CredentialIssuer,
  ProvisionTwins,
} from "../src/mgmt/provisioning_types.ts";
import type { Logger } from "../src/obs/log.ts";
import type { Principal } from "../src/security/principal.ts";
import { BadRequestError, TwinmillError } from "../src/errors.ts";
import { ErrorSchema, json } from "./schemas.ts";

/** What the bulk route needs. */
export interface BulkRouteDeps {
  twins: Pick<ProvisionTwins, "putAttributes">;
  credentials: CredentialIssuer;
  audit?: AuditSink;
  logger: Logger;
  limits?: BulkLimits;
}

const CSV = new Set(["text/csv"]);
const NDJSON = new Set(["application/x-ndjson", "application/ndjson", "application/jsonl"]);
/** Log progress at most this often. */
const LOG_EVERY_MS = 5000;

const Result = z.object({
  row: z.number().int().openapi({ description: "Line of the file the row starts on" }),
  id: z.string().optional(),
  status: z.enum(["created", "updated", "failed"]),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  token: z.string().optional().openapi({
    description: "With credentials=true: the new twin's device token (only here)",
  }),
}).openapi("BulkResult");

const Counts = z.object({
  rows: z.number().int(),
  created: z.number().int(),
  updated: z.number().int(),
  failed: z.number().int(),
  seconds: z.number(),
});

const Line = z.union([
  Result,
  z.object({ progress: Counts }),
  z.object({ error: z.object({ code: z.string(), message: z.string() }) }).openapi({
    description: "A limit was passed (payload_too_large, too_many_rows): no more rows are read",
  }),
  z.object({ summary: Counts.extend({ complete: z.boolean() }) }),
]).openapi("BulkReportLine");

const err = (description: string) => json(ErrorSchema, description);

/** Bulk provisioning route, mounted at `/v1`. */
export function bulkRoutes(d: BulkRouteDeps): OpenAPIHono {
  const limits = d.limits ?? BULK_LIMITS;
  const app = new OpenAPIHono();
  app.openAPIRegistry.registerPath({
    method: "post",
    path: "/twins:bulk",
    tags: ["provisioning"],
    summary: "Create or update twins from CSV (header with id) or NDJSON ({id, attributes})",
    description: `Streams an NDJSON report: one line per row, a progress line every \`progress\` ` +
      `rows, then \`{"summary"}\`. A bad row never stops the others. At most ` +
      `${limits.maxBytes} bytes, ${limits.maxRows} rows, ${limits.maxRowChars} characters a row.`,
    request: {
      query: z.object({
        credentials: z.enum(["true", "false"]).optional().openapi({
          description: "true: issue a device token for each new twin (in the report only)",
        }),
        progress: z.string().regex(/^\d{1,6}$/).optional().openapi({
          description: "A progress line every this many rows (default 500)",
        }),
      }),
      body: {
        content: {
          "text/csv": {
            schema: z.string().openapi({ example: "id,type,site,line\npress-1,press,plant-a,3\n" }),
          },
          "application/x-ndjson": {
            schema: z.string().openapi({
              example: '{"id":"press-1","attributes":{"type":"press","site":"plant-a"}}\n',
            }),
          },
        },
        required: true,
      },
    },
    responses: {
      200: {
        description: "The report, one JSON object per line",
        content: { "application/x-ndjson": { schema: Line } },
      },
      400: err("bad_csv_header, bad_request"),
      413: err("payload_too_large (Content-Length over the limit)"),
      415: err("unsupported_media_type"),
    },
  });

  app.post("/twins:bulk", async (c: Context) => {
    const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
    if (!CSV.has(type) && !NDJSON.has(type)) {
      throw new TwinmillError(
        "unsupported_media_type",
        415,
        "Send Content-Type: text/csv or application/x-ndjson",
      );
    }
    const length = Number(c.req.header("content-length") ?? "0");
    if (length > limits.maxBytes) {
      throw new BulkLimitError(
        "payload_too_large",
        `The body is ${length} bytes; at most ${limits.maxBytes}: split the file`,
      );
    }
    const body = c.req.raw.body;
    if (!body) throw new BadRequestError("The body is empty: send a CSV or NDJSON file");
    const credentials = c.req.query("credentials") === "true";
    const progress = Number(c.req.query("progress") ?? "500");
    if (!Number.isInteger(progress) || progress < 1 || progress > 1_000_000) {
      throw new BadRequestError("progress must be a whole number of rows from 1 to 1000000");
    }
    const rows: AsyncIterable<BulkRow> = CSV.has(type)
      ? await openCsv(body, limits)
      : ndjsonRows(body, limits);
    const who = c.get("principal" as never) as Principal | undefined;
    const requestId = c.res.headers.get("x-request-id") ?? undefined;
    const format = CSV.has(type) ? "csv" : "ndjson";
    d.logger.info("bulk provisioning started", { format, credentials, requestId });
    let logged = performance.now();
    const report = runBulk(rows, {
      twins: d.twins,
      credentials: credentials ? d.credentials : undefined,
      progressEvery: progress,
      onProgress: (p) => {
        if (performance.now() - logged < LOG_EVERY_MS) return;
        logged = performance.now();
        d.logger.info("bulk provisioning progress", { ...p, requestId });
      },
    });
    const enc = new TextEncoder();
    let last: BulkLine | undefined;
    const lines = (async function* () {
      try {
        for await (const line of report) {
          last = line;
          yield enc.encode(JSON.stringify(line) + "\n");
        }
      } finally {
        const s = last && "summary" in last ? last.summary : undefined;
        const fields: Record<string, string | number | boolean> = s
          ? {
            rows: s.rows,
            created: s.created,
            updated: s.updated,
            failed: s.failed,
            complete: s.complete,
          }
          : { complete: false, reason: "the client went away" };
        d.logger.info("bulk provisioning finished", { format, ...fields, requestId });
        d.audit?.record({
          actor: who?.id ?? "anonymous",
          role: who?.role,
          action: "twin.bulk",
          target: "/v1/twins:bulk",
          result: s?.complete ? "ok" : "failed",
          requestId,
          detail: { format, credentials, ...fields },
        });
      }
    })();
    return new Response(ReadableStream.from(lines), {
      status: 200,
      headers: { "content-type": "application/x-ndjson; charset=utf-8" },
    });
  });
  return app;
}
