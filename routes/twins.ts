/**
 * Twin routes: read, list, provision, desired patches, history.
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { TwinService } from "../src/runtime/twin_service.ts";
import type { TwinState } from "../actors/twin.ts";
import { BadRequestError, TwinNotFoundError } from "../src/errors.ts";
import {
  AttributesBody,
  errors,
  HistoryParams,
  HistorySchema,
  IdParam,
  json,
  MergePatch,
  TwinPage,
  TwinSchema,
} from "./schemas.ts";
import { type HistorySource, queryHistory } from "./history.ts";
import { validationHook } from "./validation.ts";
import { alarmView } from "./alarms.ts";
import { isValidTwinId } from "../actors/validate.ts";
import { attributeNameProblem } from "../actors/attributes.ts";

/** Refuses (400 `bad_attributes`) an attribute name that is not one ({@linkcode attributeNameProblem}). */
function checkAttributeNames(attributes: Record<string, unknown>): void {
  for (const k of Object.keys(attributes)) {
    const problem = attributeNameProblem(k);
    if (problem) throw new BadRequestError(`attributes: ${problem}`, "bad_attributes");
  }
}

const view = (s: TwinState) => ({ ...s, alarms: (s.alarms ?? []).map(alarmView) });

/**
 * The JSON bodies of the twins read last, so that a twin read again and again is serialized
 * once per change. A body is reused while its twin's state is the same object: states are
 * immutable (every change makes a new one), so a change is never served stale, and a twin
 * read through another node (a fresh object each time) is serialized each time. Bounded: the
 * oldest entry goes first; a twin not read lately costs nothing here.
 */
export class TwinBodies {
  readonly #m = new Map<string, { s: TwinState; body: string }>();

  constructor(readonly max = 1024) {}

  /** The body of `GET /v1/twins/{id}` for state `s`. */
  of(s: TwinState): string {
    const e = this.#m.get(s.id);
    if (e !== undefined && e.s === s) return e.body;
    const body = JSON.stringify(view(s));
    if (e !== undefined) this.#m.delete(s.id);
    else if (this.#m.size >= this.max) this.#m.delete(this.#m.keys().next().value!);
    this.#m.set(s.id, { s, body });
    return body;
  }
}

/** What the twin routes share with the gateway's fast read (`routes/twin_get.ts`). */
export interface TwinReads {
  bodies: TwinBodies;
  /**
   * Reads the fast path began and handed to the router (twin not found, or the read failed):
   * the route answers from them instead of reading again.
   */
  handed: WeakMap<Request, Promise<TwinState | null>>;
}

/** A fresh {@linkcode TwinReads}. */
export function twinReads(): TwinReads {
  return { bodies: new TwinBodies(), handed: new WeakMap() };
}
const getTwin = createRoute({
  method: "get",
  path: "/{id}",
  tags: ["twins"],
  summary: "Read a twin",
  request: { params: IdParam },
  responses: { 200: json(TwinSchema, "The twin"), ...errors(400, 404) },
});

const listTwins = createRoute({
  method: "get",
  path: "/",
  tags: ["twins"],
  summary: "List twins in id order (cursor paging; `prefix` keeps the ids that start with it; " +
    "any other query parameter filters by attribute)",
  request: {
    query: z.object({
      limit: z.coerce.number().int().min(1).max(1000).default(100),
      cursor: z.string().optional(),
      prefix: z.string().regex(
        /^[A-Za-z0-9_.:-]{1,128}$/,
        "prefix must be 1-128 of A-Z a-z 0-9 _ - . : (the start of a twin id)",
      ).optional().openapi({
        description: "Only twins whose id starts with this",
        example: "press-",
      }),
    }).catchall(z.string()),
  },
  responses: { 200: json(TwinPage, "A page of twins"), ...errors(400) },
});

const putTwin = createRoute({
  method: "put",
  path: "/{id}",
  tags: ["twins"],
  summary: "Create a twin or replace its attributes (provision)",
  request: {
    params: IdParam,
    body: { content: { "application/json": { schema: AttributesBody } }, required: true },
  },
  responses: {
    200: json(TwinSchema, "Attributes replaced"),
    201: json(TwinSchema, "Twin created"),
    ...errors(400, 413),
  },
});

const patchDesired = createRoute({
  method: "patch",
  path: "/{id}/desired",
  tags: ["twins"],
  summary: "JSON merge patch on desired state; If-Match: <version> for optimistic concurrency",
  request: {
    params: IdParam,
    headers: z.object({ "if-match": z.string().optional() }),
    body: {
      content: {
        "application/merge-patch+json": { schema: MergePatch },
        "application/json": { schema: MergePatch },
      },
      required: true,
    },
  },
  responses: { 200: json(TwinSchema, "The patched twin"), ...errors(400, 404, 412, 413) },
});

const history = createRoute({
  method: "get",
  path: "/{id}/history",
  tags: ["twins"],
  summary: "Time series of one telemetry field from InfluxDB",
  request: { params: IdParam, query: HistoryParams },
  responses: { 200: json(HistorySchema, "Points"), ...errors(400, 502, 503) },
});

/** Longest cursor: the base64url of a 128-character twin id. */
const MAX_CURSOR = 171;

/** A list cursor: the base64url of the last twin id of the previous page. */
const cursors = {
  enc: (id: string) => btoa(id).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", ""),
  dec: (s: string): string => {
    const bad = () =>
      new BadRequestError(
        `cursor "${s.slice(0, 40)}${s.length > 40 ? "…" : ""}" is not a cursor of this list: ` +
          "pass the cursor of the previous page",
        "bad_cursor",
      );
    if (s.length > MAX_CURSOR || !/^[A-Za-z0-9_-]+$/.test(s)) throw bad();
    let id: string;
    try {
      id = atob(s.replaceAll("-", "+").replaceAll("_", "/"));
    } catch {
      throw bad();
    }
    if (!isValidTwinId(id)) throw bad();
    return id;
  },
};

/**
 * Where a listing of the ids starting with `prefix` begins: the `after` below every such id
 * and above every smaller one (ids are ASCII: the prefix with its last character one lower,
 * then U+FFFF).
 */
export function beforePrefix(prefix: string): string {
  const last = prefix.charCodeAt(prefix.length - 1);
  return prefix.slice(0, -1) + String.fromCharCode(last - 1) + "\uffff";
}

/** Twin routes, mounted at `/v1/twins`. */
export function twinRoutes(
  host: TwinService,
  historySource?: HistorySource,
  reads: TwinReads = twinReads(),
) {
  const app = new OpenAPIHono({ defaultHook: validationHook });

  app.openapi(getTwin, async (c) => {
    const { id } = c.req.valid("param");
    const s = await (reads.handed.get(c.req.raw) ?? host.get(id));
    if (!s) throw new TwinNotFoundError(id);
    // the body c.json(view(s)) would make, serialized once per change of the twin (typed as
    // the route's JSON: the OpenAPI types know only c.json)
    return c.body(reads.bodies.of(s), 200, { "content-type": "application/json" }) as never;
  });

  app.openapi(listTwins, async (c) => {
    // the raw names: a parsed query object drops `__proto__` (and the filter with it)
    for (const name of new URL(c.req.url).searchParams.keys()) {
      const problem = name === "limit" || name === "cursor" || name === "prefix"
        ? undefined
        : attributeNameProblem(name);
      if (problem) {
        throw new BadRequestError(`filter ${name.slice(0, 130)}: ${problem}`, "bad_filter");
      }
    }
    const { limit, cursor, prefix, ...filter } = c.req.valid("query");
    let after = cursor ? cursors.dec(cursor) : undefined;
    if (prefix !== undefined && (after === undefined || after < prefix)) {
      after = beforePrefix(prefix);
    }
    const page = await host.list(after, limit, filter as Record<string, string>);
    let { items, next } = page;
    if (prefix !== undefined) {
      // in id order: the ids with the prefix come first, then the rest (and no next page)
      const past = items.findIndex((s) => !s.id.startsWith(prefix));
      if (past >= 0) (items = items.slice(0, past), next = undefined);
    }
    return c.json(
      { items: items.map(view), ...(next ? { cursor: cursors.enc(next) } : {}) },
      200,
    );
  });

  app.openapi(putTwin, async (c) => {
    const { id } = c.req.valid("param");
    const { attributes } = c.req.valid("json");
    checkAttributeNames(attributes);
    const s = await host.putAttributes(id, attributes);
    return c.json(view(s), s.version === 1 ? 201 : 200);
  });

  app.openapi(patchDesired, async (c) => {
    const { id } = c.req.valid("param");
    const ifMatchRaw = c.req.valid("header")["if-match"];
    let ifMatch: number | undefined;
    if (ifMatchRaw !== undefined) {
      const v = ifMatchRaw.replace(/^W\//, "").replaceAll('"', "").trim();
      if (!/^\d+$/.test(v)) throw new BadRequestError("If-Match must be a twin version number");
      ifMatch = Number(v);
    }
    const s = await host.patchDesired(id, c.req.valid("json"), ifMatch);
    return c.json(view(s), 200, { etag: `"${s.version}"` });
  });

  app.openapi(history, async (c) => {
    const { id } = c.req.valid("param");
    const q = c.req.valid("query");
    const from = q.from ?? new Date(Date.now() - 3_600_000).toISOString();
    for (const [k, v] of [["from", from], ["to", q.to]] as const) {
      if (v !== undefined && Number.isNaN(Date.parse(v))) {
        throw new BadRequestError(`${k} must be an RFC 3339 time, got "${v}"`);
      }
    }
    const agg = q.every ? (q.agg ?? "mean") : null;
    const points = await queryHistory(historySource, {
      twin: id,
      field: q.field,
      from: new Date(from).toISOString(),
      to: q.to ? new Date(q.to).toISOString() : undefined,
      every: q.every,
      agg: agg ?? "mean",
    });
    return c.json({ twin: id, field: q.field, agg, every: q.every ?? null, points }, 200);
  });

  return app;
}
