/**
 * The hot read, `GET /v1/twins/{id}`, answered in front of the router: the same response as the
 * route (`routes/twins.ts`) with the same request id and request metrics, without the router,
 * the middleware chain, a Hono context and the parameter schema, which together cost more than
 * the read itself (see "GET profile" in `bench/README.md`).
 *
 * It answers only what it can answer exactly as the router would: a `GET` of a valid twin id
 * (no query, no %-escape) of a twin that exists, by a caller the router's own decision
 * (`admit` of `routes/auth.ts`: authentication, rate limit, role, site scope) admits — or with
 * no authentication configured (anonymous admin: nothing to check). Anything else goes to the
 * router; what it began is handed over, not done again: the admission (a refusal is answered,
 * audited and counted by the router's auth middleware, as any refusal) and the read (twin not
 * found, or the read failed: the route answers from it).
 * @module
 */
import type { ExecutionContext } from "hono";
import type { TwinService } from "../src/runtime/twin_service.ts";
import { isValidTwinId } from "../actors/validate.ts";
import type { TwinReads } from "./twins.ts";
import type { TwinState } from "../actors/twin.ts";
import type { Admission, AuthRequest } from "./auth.ts";

/** What {@linkcode fastTwinGet} needs. */
export interface FastGetParts {
  host: TwinService;
  reads: TwinReads;
  /** True while requests need no authentication (none configured). */
  anonymous(): boolean;
  /** The router's authentication (`admit` of `routes/auth.ts`), when configured. */
  auth?: {
    admit(r: AuthRequest): Promise<Admission>;
    /** Where an admission made here is handed to the router's auth middleware. */
    handed: WeakMap<Request, Promise<Admission>>;
    /** The {@linkcode AuthRequest} of a raw request with path `path`. */
    view(req: Request, path: string): AuthRequest;
  };
  /** The request id of a request carrying X-Request-Id `given` (null: none). */
  requestId(given: string | null): string;
  /**
   * The request metrics of a label set: the function counts a finished request begun at
   * `start` (from `performance.now()`).
   */
  recorder(route: string, method: string, status: number): (start: number) => void;
}

/** A request handler as `Deno.serve` and `app.fetch` take it. */
type Fetch = (
  req: Request,
  env?: unknown,
  ctx?: ExecutionContext,
) => Response | Promise<Response>;

/** The route's pattern, its label in the request metrics. */
export const TWIN_ROUTE = "/v1/twins/:id";

const PREFIX = "/v1/twins/";

const JSON_INIT = { headers: { "content-type": "application/json" } };

/** The twin id of a `/v1/twins/{id}` URL with a valid id and no query, else undefined. */
export function hotTwinId(url: string): string | undefined {
  // where the path starts, as Hono finds it
  const start = url.indexOf("/", url.indexOf(":") + 4);
  if (start < 0 || !url.startsWith(PREFIX, start)) return undefined;
  const id = url.slice(start + PREFIX.length);
  return isValidTwinId(id) ? id : undefined;
}

/** `router` with `GET /v1/twins/{id}` answered in front of it where it can be. */
export function fastTwinGet(p: FastGetParts, router: Fetch): Fetch {
  const { host, reads } = p;
  let ok: ((start: number) => void) | undefined;
  const answer = async (
    req: Request,
    id: string,
    start: number,
    admission: Promise<Admission> | undefined,
    env: unknown,
    ctx?: ExecutionContext,
  ) => {
    let read: Promise<TwinState | null>;
    try {
      read = host.get(id);
    } catch (err) {
      read = Promise.reject(err); // answered by the route, as an error thrown there would be
    }
    let s;
    try {
      s = await read;
    } catch {
      s = null;
    }
    if (s === null) {
      reads.handed.set(req, read);
      if (admission !== undefined) p.auth!.handed.set(req, admission);
      return await router(req, env, ctx);
    }
    const res = new Response(reads.bodies.of(s), JSON_INIT);
    res.headers.set("x-request-id", p.requestId(req.headers.get("x-request-id")));
    (ok ??= p.recorder(TWIN_ROUTE, "GET", 200))(start);
    return res;
  };
  /** Served here only if admitted with a principal (no ticket); else the router decides. */
  const authenticated = async (
    req: Request,
    id: string,
    env: unknown,
    ctx?: ExecutionContext,
  ) => {
    const start = performance.now();
    const auth = p.auth!;
    const admission = auth.admit(auth.view(req, PREFIX + id));
    let served = false;
    try {
      const a = await admission;
      served = a.ok && a.principal !== undefined && a.spend === undefined;
    } catch {
      // not a refusal: the router's middleware throws it, as it would have
    }
    if (served) return await answer(req, id, start, admission, env, ctx);
    auth.handed.set(req, admission);
    return await router(req, env, ctx);
  };
  return (req, env, ctx) => {
    if (req.method !== "GET") return router(req, env, ctx);
    const id = hotTwinId(req.url);
    if (id === undefined) return router(req, env, ctx);
    if (p.anonymous()) return answer(req, id, performance.now(), undefined, env, ctx);
    return p.auth ? authenticated(req, id, env, ctx) : router(req, env, ctx);
  };
}
