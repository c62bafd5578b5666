/**
 * The HTTP gateway: composed from route modules, one error mapper, request metrics, a body
 * size limit, and the OpenAPI document with interactive docs.
 * @module
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { matchedRoutes } from "hono/route";
import { errorHandler } from "./errors.ts";
import { continueTrace, withTrace } from "../src/obs/trace.ts";
import { healthRoutes, type Readiness } from "./health.ts";
import { twinReads, twinRoutes } from "./twins.ts";
import { fastTwinGet } from "./twin_get.ts";
import { streamRoutes } from "./stream.ts";
import { consoleRoutes } from "./console.ts";
import { docsRoutes } from "./docs.ts";
import type { HistorySource } from "./history.ts";
import type { TwinService } from "../src/runtime/twin_service.ts";
import type { Transport } from "../src/transport/port.ts";
import type { Metrics } from "../src/obs/metrics.ts";
import type { Logger } from "../src/obs/log.ts";
import { validationHook } from "./validation.ts";
import { jsonIntake } from "./json_intake.ts";
import type { JsonLimits } from "../actors/json_intake.ts";
import {
  type Admission,
  admit,
  anonymousOnly,
  authMiddleware,
  type AuthOptions,
  principalOf,
  rawAuthRequest,
} from "./auth.ts";
import type { Context } from "hono";
import type { Principal } from "../src/security/principal.ts";

/** What the gateway needs. */
export interface AppDeps {
  host: TwinService;
  transport: Transport;
  metrics: Metrics;
  logger: Logger;
  history?: HistorySource;
  /** `/readyz`: true, false, or why not ({@linkcode Readiness}). */
  ready(): Readiness;
  /** Authentication, roles, scopes and rate limits of `/v1/*` (none: anonymous admin). */
  auth?: AuthOptions;
  /** Called after every mutating `/v1/*` request that passed authentication (audit log). */
  audit?(c: Context, principal: Principal | undefined, status: number): void;
  /** Limits of the JSON intake for request bodies (default `DEFAULT_JSON_LIMITS`). */
  jsonLimits?: JsonLimits;
  /** More route modules by mount path (e.g. `/v1/cluster` in cluster mode). */
  // deno-lint-ignore no-explicit-any
  extra?: Record<string, Hono<any, any, any>>;
}

/** Largest accepted request body. */
export const MAX_BODY_BYTES = 1024 * 1024;

/** Routes that stream large bodies and enforce their own limits (firmware upload, bulk). */
const LARGE_BODY_ROUTES = /^\/v1\/(firmware\/?$|twins:bulk$)/;

/** Build the gateway. Tests call `app.request(...)` directly. */
export function createApp(d: AppDeps): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  app.onError(errorHandler(d.logger));
  app.notFound((c) =>
    c.json({ error: { code: "not_found", message: `No route ${c.req.method} ${c.req.path}` } }, 404)
  );
  // One outer middleware (each layer costs a little on every request): the request id — the
  // caller's X-Request-Id, else a new one, echoed and in audit entries — request metrics, and
  // the audit entry of a mutating /v1 call that passed authentication.
  // prom-client hashes label objects on every call; keep one child per label set instead.
  const recorders = new Map<string, (start: number) => void>();
  const idPrefix = crypto.randomUUID().slice(0, 8);
  let requests = 0;
  const requestId = (given: string | null | undefined) =>
    given && /^[\w.:-]{1,64}$/.test(given) ? given : `${idPrefix}-${(++requests).toString(36)}`;
  /** The request metrics of one label set: `(start) => void` counts a request begun at `start`. */
  const recorder = (route: string, method: string, status: number) => {
    const key = `${route} ${method} ${status}`;
    let rec = recorders.get(key);
    if (!rec) {
      const counter = d.metrics.httpRequests.labels(route, method, String(status));
      const hist = d.metrics.httpDuration.labels(route, method);
      rec = (start) => {
        counter.inc();
        hist.observe((performance.now() - start) / 1000);
      };
      recorders.set(key, rec);
    }
    return rec;
  };
  app.use("*", async (c, next) => {
    const start = performance.now();
    const id = requestId(c.req.header("x-request-id"));
    c.header("x-request-id", id);
    // W3C trace context: continue the caller's trace (or start one); log lines of this request
    // on this node and on the nodes it asks over NATS carry its trace id and request id
    // Reads are not traced: they log nothing unless they fail (the error line names the
    // request id) and routed reads travel in batches; the context costs the hot path ~10 %.
    if (c.req.method === "GET" || c.req.method === "HEAD") await next();
    else await withTrace(continueTrace(c.req.header("traceparent"), id), next);
    // the last matched route that is a handler, not middleware ("ALL"): a bounded label set
    const route = matchedRoutes(c).findLast((r) => r.method !== "ALL")?.path ?? "unmatched";
    const method = c.req.method;
    recorder(route, method, c.res.status)(start);
    if (
      d.audit && method !== "GET" && method !== "HEAD" && c.req.path.startsWith("/v1/") &&
      c.get("principal" as never)
    ) {
      d.audit(c, principalOf(c), c.res.status);
    }
  });
  const limit = bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: () => {
      throw new HTTPException(413, { message: "Request body is too large" });
    },
  });
  // firmware images and bulk provisioning files are streamed and bounded by their own routes
  // Body checks are registered for the methods with bodies only: a GET (the hot path) passes
  // no middleware of theirs (each one costs reads measurably in Hono).
  const withBody = ["POST", "PUT", "PATCH", "DELETE"];
  app.on(
    withBody,
    "/v1/*",
    (c, next) => LARGE_BODY_ROUTES.test(c.req.path) ? next() : limit(c, next),
  );
  // admissions made in front of the router (routes/twin_get.ts), not made again
  const admissions = new WeakMap<Request, Promise<Admission>>();
  if (d.auth) app.use("/v1/*", authMiddleware(d.auth, admissions));
  // every JSON body within the intake's limits before a route sees it (after authentication:
  // strangers get a 401, not a parse)
  const intake = jsonIntake(d.jsonLimits);
  app.on(
    withBody,
    "/v1/*",
    (c, next) => LARGE_BODY_ROUTES.test(c.req.path) ? next() : intake(c, next),
  );
  app.route("/", healthRoutes(d.metrics, d.ready));
  const reads = twinReads();
  app.route("/v1/twins", twinRoutes(d.host, d.history, reads));
  for (const [path, routes] of Object.entries(d.extra ?? {})) app.route(path, routes);
  app.route(
    "/v1/stream",
    streamRoutes({ transport: d.transport, metrics: d.metrics, logger: d.logger }),
  );
  app.doc("/openapi.json", {
    openapi: "3.0.3",
    info: {
      title: "twinmill",
      version: "0.1.0",
      description: "Digital twins of factory devices: state, desired state, history, live events.",
    },
  });
  app.route("/", docsRoutes());
  // the operator console: static files, outside /v1 (its script asks for credentials)
  app.route("/", consoleRoutes());
  // the hot read in front of the router, unless another module routes its URLs too
  if (!Object.entries(d.extra ?? {}).some(([at, r]) => routesTwinGet(at, r))) {
    const auth = d.auth;
    app.fetch = fastTwinGet({
      host: d.host,
      reads,
      anonymous: () => anonymousOnly(auth),
      auth: auth && { admit: (r) => admit(auth, r), handed: admissions, view: rawAuthRequest },
      requestId,
      recorder,
    }, app.fetch);
  }
  return app;
}

/** True if `routes`, mounted at `at`, has a GET route or middleware a `/v1/twins/{id}` could match. */
// deno-lint-ignore no-explicit-any
function routesTwinGet(at: string, routes: Hono<any, any, any>): boolean {
  return routes.routes.some((r) => {
    if (r.method !== "GET" && r.method !== "ALL") return false;
    const path = (at.replace(/\/+$/, "") + r.path).replace(/\/+$/, "") || "/";
    if (path.endsWith("*")) return "/v1/twins/x".startsWith(path.slice(0, -1));
    return /^\/v1\/twins\/[^/]+$/.test(path);
  });
}
