/**
 * Security of the gateway: API keys, JWT and stream tickets (`AuthOptions`), refusals
 * audited (bounded by a denial gate so they cannot flush the history) and counted, the audit
 * log of mutating requests, device credentials and revocations.
 * @module
 */
import type { Context } from "hono";
import { auditAction, type AuthOptions, keyId, ticketRoutes, Tickets } from "../../routes/auth.ts";
import { whoamiRoutes } from "../../routes/whoami.ts";
import { credentialRoutes, revocationRoutes } from "../../routes/credentials.ts";
import { auditRoutes } from "../../routes/audit.ts";
import { createJwtVerifier } from "../security/jwt.ts";
import { RateLimiter } from "../security/rate_limit.ts";
import { DenialGate, NODE_DENIAL_LIMIT } from "../security/audit_gate.ts";
import type { Principal } from "../security/principal.ts";
import type { FeatureContext, FeatureRoutes } from "./feature.ts";

/** The security feature of a node. */
export interface Security extends FeatureRoutes {
  auth: AuthOptions;
  /** The audit entry of a mutating request that passed authentication. */
  audited(c: Context, principal: Principal | undefined, status: number): void;
}

/** Set up authentication and the audit log of a node. */
export async function security(
  { cfg, log, metrics, parts, twins }: FeatureContext,
): Promise<Security> {
  const { audit, deviceAuth } = parts;
  // refusals can come from anyone: their entries are bounded so they cannot flush the history
  audit.gate = new DenialGate({
    ...NODE_DENIAL_LIMIT,
    onSuppressed: () => metrics.auditSuppressed.inc(),
    onSummary: (entries, since) =>
      log.warn(`audit entries of refusals left out (over ${NODE_DENIAL_LIMIT.perSecond}/s)`, {
        entries,
        since: new Date(since).toISOString(),
      }),
  });
  const revoked = await deviceAuth.loadRevoked();
  if (revoked > 0) log.info("revoked client certificates loaded", { serials: revoked });

  const tickets = new Tickets();
  const httpLog = log.child("http");
  const auth: AuthOptions = {
    apiKeys: cfg.apiKeys,
    jwt: cfg.jwt
      ? await createJwtVerifier({
        secret: cfg.jwt.secret,
        publicKeyPem: cfg.jwt.publicKeyFile
          ? await Deno.readTextFile(cfg.jwt.publicKeyFile)
          : undefined,
        jwksPath: cfg.jwt.jwksFile,
        issuer: cfg.jwt.issuer,
        audience: cfg.jwt.audience,
        clockToleranceSec: cfg.jwt.clockToleranceSec,
      })
      : undefined,
    tickets,
    twins,
    limiter: new RateLimiter({ rate: cfg.httpRate }),
    denied: (c, who, status, reason) => {
      metrics.authDenied.inc({ status: String(status) });
      audit.record({
        actor: who,
        action: status === 401
          ? "auth.failure"
          : status === 403
          ? "auth.forbidden"
          : "auth.rate_limited",
        target: `${c.req.method} ${c.req.path.slice(0, 200)}`,
        result: "denied",
        requestId: c.res.headers.get("x-request-id") ?? undefined,
        detail: { reason: reason.slice(0, 200) },
      });
      if (status === 429) metrics.rateLimited.inc({ what: "http_request" });
      httpLog.warn("request refused", {
        status,
        reason,
        principal: who,
        method: c.req.method,
        path: c.req.path.slice(0, 200),
      });
    },
  };
  if (cfg.apiKeys.size > 0) {
    log.info("API keys loaded", {
      keys: [...cfg.apiKeys].map(([k, v]) => ({ id: keyId(k), role: v.role, site: v.site })),
    });
  }
  return {
    auth,
    audited: (c, p, status) =>
      audit.record({
        actor: p?.id ?? "anonymous",
        role: p?.role,
        action: auditAction(c.req.method, c.req.path),
        target: c.req.path.slice(0, 200),
        result: status < 400 ? "ok" : "failed",
        requestId: c.res.headers.get("x-request-id") ?? undefined,
        detail: { status },
      }),
    twinRoutes: [credentialRoutes(deviceAuth, twins)],
    routes: {
      "/v1/stream": ticketRoutes(tickets),
      "/v1/revocations": revocationRoutes(deviceAuth),
      "/v1/audit": auditRoutes(audit),
      "/v1/whoami": whoamiRoutes(),
    },
  };
}
