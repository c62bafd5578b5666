/**
 * Application authentication and authorisation for `/v1/*`: API keys (`TWINMILL_API_KEYS`,
 * `key:role` or `key:role:site`) and JWT bearer tokens; roles by route class; site scopes
 * checked against the twin's `site` attribute; short-lived single-use WebSocket tickets;
 * per-principal rate limits. Without any key or JWT configured (only allowed on a loopback
 * bind), every caller is the anonymous admin.
 * @module
 */
import { createHash, randomBytes } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { json } from "./schemas.ts";
import type { TwinService } from "../src/runtime/twin_service.ts";
import { hasRole, inScope, type Principal, type Role } from "../src/security/principal.ts";
import { ForbiddenError, RateLimitedError, UnauthorizedError } from "../src/errors.ts";
import type { RateLimiter } from "../src/security/rate_limit.ts";
import { parseAlarmId } from "../actors/rules/alarm.ts";

/** Verifies a JWT (see `src/security/jwt.ts`). */
export interface BearerVerifier {
  verify(token: string): Promise<Principal>;
}

/** Single-use WebSocket tickets (browsers cannot set headers on a WebSocket). */
export class Tickets {
  readonly #t = new Map<string, { p: Principal; until: number }>();
  constructor(readonly ttlMs = 60_000, readonly max = 10_000) {}

  issue(p: Principal): { ticket: string; expiresAt: number } {
    const now = Date.now();
    for (const [k, v] of this.#t) if (v.until < now) this.#t.delete(k);
    if (this.#t.size >= this.max) this.#t.delete(this.#t.keys().next().value!);
    const ticket = randomBytes(24).toString("base64url");
    const until = now + this.ttlMs;
    this.#t.set(ticket, { p: { ...p, via: "ticket" }, until });
    return { ticket, expiresAt: until };
  }

  /** The ticket's principal, without spending it; null if unknown, used or expired. */
  peek(ticket: string): Principal | null {
    const e = this.#t.get(ticket);
    return e && e.until >= Date.now() ? e.p : null;
  }

  /** The ticket's principal, once; null if unknown, used or expired. */
  take(ticket: string): Principal | null {
    const p = this.peek(ticket);
    this.#t.delete(ticket);
    return p;
  }
}

/** Options of {@linkcode authMiddleware}. */
export interface AuthOptions {
  apiKeys: Map<string, { role: Role; site?: string }>;
  jwt?: BearerVerifier;
  tickets: Tickets;
  twins: TwinService;
  /** Per-principal request rate (authenticated callers only). */
  limiter?: RateLimiter;
  /** Called for every refused request (audit, metrics). */
  denied?(c: Context, who: string, status: 401 | 403 | 429, reason: string): void;
}

/** What a route class requires. */
interface Access {
  role: Role;
  /** The twin the request is about (site scope). */
  twin?: string;
  /** Only for principals without a site scope. */
  unscoped?: boolean;
  /** A list: a scoped caller must filter by one of its sites. */
  list?: boolean;
  /** The stream: a scoped caller must name its twins. */
  stream?: boolean;
  /** `PUT /v1/twins/{id}`: the new attributes' site must be in scope too. */
  provision?: boolean;
  /**
   * The handler authenticates the caller itself: `POST /v1/provision` (a provisioning key) and,
   * with `Authorization: Basic`, a device downloading firmware (twin id and device token).
   */
  self?: "always" | "basic";
}

const seg = (s: string) => decodeURIComponent(s);

/** The access a request needs, by method and path (under `/v1`). */
export function accessOf(method: string, path: string): Access {
  const p = path.replace(/\/+$/, "").split("/").slice(2); // after "/v1"
  const [root, a, b] = p;
  const read = method === "GET" || method === "HEAD";
  switch (root) {
    case "twins":
      if (a === undefined) return read ? { role: "viewer", list: true } : { role: "admin" };
      if (b === "credentials") return { role: "admin", twin: seg(a) };
      if (b === "desired" || b === "commands") {
        return { role: read ? "viewer" : "operator", twin: seg(a) };
      }
      if (b === undefined && !read) return { role: "admin", twin: seg(a), provision: true };
      return { role: read ? "viewer" : "admin", twin: seg(a) };
    case "alarms":
      if (a === undefined) return { role: "viewer", list: true };
      return { role: "operator", twin: parseAlarmId(seg(a))?.twin ?? seg(a) };
    case "stream":
      if (a === "tickets") return { role: "viewer" };
      return { role: "viewer", stream: true };
    case "profiles":
      return read ? { role: "viewer" } : { role: "admin", unscoped: true };
    case "audit":
      return { role: "admin", unscoped: true };
    case "cluster":
    case "fleet":
    case "whoami":
      return { role: "viewer" };
    case "provision":
      return { role: "admin", self: "always" };
    case "firmware":
      if (b === "download") return { role: "viewer", self: "basic" };
      return read ? { role: "viewer" } : { role: "admin", unscoped: true };
    case "configs":
    case "campaigns":
      return read ? { role: "viewer" } : { role: "admin", unscoped: true };
    default:
      return { role: "admin", unscoped: true };
  }
}

/** A loggable id of an API key: a fingerprint, never the key. */
export function keyId(key: string): string {
  return `key:${createHash("sha256").update(key).digest("hex").slice(0, 12)}`;
}

/**
 * What authentication reads of a request: Hono's `c.req` in the router, or
 * {@linkcode rawAuthRequest} in front of it (`routes/twin_get.ts`).
 */
export interface AuthRequest {
  readonly method: string;
  /** The path, as Hono's `c.req.path` gives it. */
  readonly path: string;
  header(name: string): string | undefined;
  query(name: string): string | undefined;
  /** The JSON body (read only for provisioning, whose new attributes must stay in scope). */
  json(): Promise<unknown>;
}

/** An {@linkcode AuthRequest} of a raw request whose path is `path`. */
export function rawAuthRequest(req: Request, path: string): AuthRequest {
  return {
    method: req.method,
    path,
    header: (name) => req.headers.get(name) ?? undefined,
    query: (name) => new URL(req.url).searchParams.get(name) ?? undefined,
    json: () => req.clone().json(),
  };
}

/**
 * The decision of {@linkcode admit}: admitted (with no principal when the handler
 * authenticates the caller itself; `spend` spends the stream ticket it came with), or refused
 * with the error to answer and what the denial audit records.
 */
export type Admission =
  | { ok: true; principal?: Principal; spend?: () => boolean }
  | {
    ok: false;
    who: string;
    status: 401 | 403 | 429;
    reason: string;
    error: UnauthorizedError | ForbiddenError | RateLimitedError;
  };

/** True when no API key and no JWT is configured: every caller is the anonymous admin. */
export function anonymousOnly(o: AuthOptions | undefined): boolean {
  return !o || (o.apiKeys.size === 0 && !o.jwt);
}

/** Authenticate the caller of `r` (header, or `?ticket=` on the stream). */
async function authenticate(
  o: AuthOptions,
  r: AuthRequest,
): Promise<{ p: Principal; spend?: () => boolean }> {
  if (anonymousOnly(o)) return { p: { id: "anonymous", role: "admin", via: "anonymous" } };
  const ticket = r.path.startsWith("/v1/stream") ? r.query("ticket") : undefined;
  if (ticket) {
    // spent only by a request that is accepted: the stream route calls spendTicket(c) as it
    // upgrades; a request refused before (role, scope, bad parameters) leaves it valid
    const p = o.tickets.peek(ticket);
    if (!p) throw new UnauthorizedError(TICKET_GONE);
    return { p, spend: () => o.tickets.take(ticket) !== null };
  }
  const h = r.header("authorization") ?? "";
  const m = /^Bearer\s+(\S+)$/i.exec(h);
  if (!m) throw new UnauthorizedError();
  const token = m[1];
  const k = o.apiKeys.get(token);
  if (k) {
    let id = keyIds.get(token);
    if (id === undefined) keyIds.set(token, id = keyId(token));
    return {
      p: k.site === undefined
        ? { id, role: k.role, via: "api_key" }
        : { id, role: k.role, sites: [k.site], via: "api_key" },
    };
  }
  if (o.jwt && token.split(".").length === 3) return { p: await o.jwt.verify(token) };
  throw new UnauthorizedError("Invalid API key or token");
}

/**
 * {@linkcode keyId} of the configured keys callers used (a SHA-256 per request cost the hot
 * read measurably); only keys found in `apiKeys` enter, so it stays as small as they are.
 */
const keyIds = new Map<string, string>();

const TICKET_GONE = "Unknown, used or expired stream ticket";

/**
 * Spends the stream ticket a request authenticated with, if any, when the request is accepted
 * (the WebSocket upgrade); throws 401 when another request spent it meanwhile.
 */
export function spendTicket(c: Context): void {
  const spend = c.get("ticket" as never) as (() => boolean) | undefined;
  if (spend && !spend()) throw new UnauthorizedError(TICKET_GONE);
}

/** The caller of a request that passed {@linkcode authMiddleware}. */
export function principalOf(c: Context): Principal {
  return c.get("principal" as never) as Principal;
}

/**
 * The caller's site scope, to filter what a route returns: undefined when the caller may see
 * every site (or no authentication runs), else a test of a twin's `site` attribute. Every
 * route that returns twins or twin ids from more than one twin applies it.
 */
export function siteScope(c: Context): ((site: unknown) => boolean) | undefined {
  const p = c.get("principal" as never) as Principal | undefined;
  return p?.sites === undefined ? undefined : (site) => inScope(p, site);
}

/**
 * Whether request `r` may proceed, and as whom: the one decision of `/v1/*` — authentication
 * (API key, JWT, stream ticket), the rate limit (a token taken per call: call once per
 * request), the role the route class needs and the site scope. It records nothing: the
 * caller reports a refusal ({@linkcode authMiddleware} calls `denied`). Rejects only with an
 * error that is not a refusal (as the middleware then throws it).
 */
export async function admit(o: AuthOptions, r: AuthRequest): Promise<Admission> {
  const path = r.path;
  if (path.startsWith("/v1/provision") || path.startsWith("/v1/firmware/")) {
    const self = accessOf(r.method, path).self;
    if (
      self === "always" ||
      (self === "basic" && /^Basic\s/i.test(r.header("authorization") ?? ""))
    ) {
      return { ok: true }; // the handler authenticates (provisioning key, device token)
    }
  }
  let a: { p: Principal; spend?: () => boolean };
  try {
    a = await authenticate(o, r);
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err;
    return { ok: false, who: "unknown", status: 401, reason: err.message, error: err };
  }
  const p = a.p;
  // no authentication configured (loopback only): nothing to check
  if (p.via === "anonymous") return { ok: true, principal: p };
  if (o.limiter) {
    const wait = o.limiter.take(p.id);
    if (wait > 0) {
      const error = new RateLimitedError(wait);
      return { ok: false, who: p.id, status: 429, reason: "rate limited", error };
    }
  }
  const need = accessOf(r.method, path);
  const deny = (why: string): Admission => ({
    ok: false,
    who: p.id,
    status: 403,
    reason: why,
    error: new ForbiddenError(why),
  });
  if (!hasRole(p.role, need.role)) {
    return deny(`Role ${p.role} may not do this; it needs ${need.role}`);
  }
  if (p.sites !== undefined) {
    if (need.unscoped) return deny("A site-scoped caller may not do this");
    if (need.list && !p.sites.includes(r.query("site") ?? "")) {
      return deny(`Filter by your site: add site=${p.sites[0]}`);
    }
    if (need.stream) {
      const ids = (r.query("twins") ?? "").split(",").filter(Boolean);
      if (ids.length === 0) return deny("A site-scoped stream must name its twins (twins=a,b)");
      for (const id of ids) {
        if (!await twinInScope(o, p, id)) return deny(`Twin "${id}" is not in your sites`);
      }
    }
    if (need.twin !== undefined && !await twinInScope(o, p, need.twin)) {
      return deny(`Twin "${need.twin}" is not in your sites`);
    }
    if (need.provision) {
      // provisioning: the new attributes must stay in scope
      const body = await r.json().catch(() => null) as { attributes?: { site?: unknown } };
      if (body && !inScope(p, body.attributes?.site)) return deny("The twin's site must be yours");
    }
  }
  return { ok: true, principal: p, spend: a.spend };
}

/**
 * The middleware for `/v1/*`: {@linkcode admit}, or the admission already made for the
 * request in front of the router (`handed`, by `routes/twin_get.ts`); a refusal is reported
 * (`denied`: audit, metrics) and thrown.
 */
export function authMiddleware(
  o: AuthOptions,
  handed?: WeakMap<Request, Promise<Admission>>,
): MiddlewareHandler {
  return async (c, next) => {
    const a = await (handed?.get(c.req.raw) ?? admit(o, c.req));
    if (!a.ok) {
      o.denied?.(c, a.who, a.status, a.reason);
      if (a.error instanceof RateLimitedError) {
        c.header("Retry-After", String(a.error.retryAfterSec));
      }
      throw a.error;
    }
    if (a.principal !== undefined) c.set("principal" as never, a.principal as never);
    if (a.spend !== undefined) c.set("ticket" as never, a.spend as never);
    await next();
  };
}

/** False when twin `id` exists outside `p`'s sites (a twin that does not exist yet: only
 * provisioning can create it, checked on its body). */
async function twinInScope(o: AuthOptions, p: Principal, id: string): Promise<boolean> {
  const twin = await o.twins.get(id).catch(() => null);
  return !twin || inScope(p, twin.attributes.site);
}

const issueTicket = createRoute({
  method: "post",
  path: "/tickets",
  tags: ["stream"],
  summary: "A single-use ticket for GET /v1/stream?ticket= (browsers cannot set headers on a " +
    "WebSocket); valid 60 s, with the caller's role and sites",
  responses: {
    201: json(
      z.object({
        ticket: z.string(),
        expiresAt: z.string().openapi({ example: "2024-05-01T12:01:00.000Z" }),
      }).openapi("StreamTicket"),
      "The ticket",
    ),
  },
});

/** `POST /v1/stream/tickets`: a single-use ticket for `/v1/stream?ticket=` (60 s). */
export function ticketRoutes(tickets: Tickets): OpenAPIHono {
  const app = new OpenAPIHono();
  app.openapi(issueTicket, (c) => {
    const t = tickets.issue(principalOf(c));
    return c.json({ ticket: t.ticket, expiresAt: new Date(t.expiresAt).toISOString() }, 201);
  });
  return app;
}

/** A dotted audit action for a request, e.g. `desired.patch`, `credential.revoke`. */
export function auditAction(method: string, path: string): string {
  const [root, a, b] = path.replace(/\/+$/, "").split("/").slice(2);
  const verb = ({ POST: "create", PUT: "put", PATCH: "patch", DELETE: "delete" } as Record<
    string,
    string
  >)[method] ?? method.toLowerCase();
  if (root === "twins" && b === "credentials") {
    return method === "DELETE" ? "credential.revoke" : `credential.${verb}`;
  }
  if (root === "twins" && b === "desired") return "desired.patch";
  if (root === "twins") return `twin.${verb}`;
  if (root === "alarms" && a !== undefined) return "alarm.ack";
  if (root === "profiles") return `profile.${verb}`;
  if (root === "revocations") return "certificate.revoke";
  if (root === "stream") return "ticket.create";
  return `${root}.${verb}`;
}
