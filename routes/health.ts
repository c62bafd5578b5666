/**
 * Liveness, readiness and Prometheus metrics.
 * @module
 */
import { Hono } from "hono";
import type { Metrics } from "../src/obs/metrics.ts";

/** Why a node is not ready: the message and what it waits for, in the 503 of `/readyz`. */
export interface NotReady {
  message: string;
  /** What the node waits for, e.g. `{what: "NATS/JetStream", at, reason, attempts, since}`. */
  waitingFor?: object;
}

/** Readiness: `true`, `false`, or why not. */
export type Readiness = boolean | NotReady;

/** Health and metrics routes. */
export function healthRoutes(metrics: Metrics, ready: () => Readiness): Hono {
  const app = new Hono();
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", (c) => {
    const r = ready();
    if (r === true) return c.json({ status: "ready" }, 200);
    const why = r === false ? { message: "Node is not ready" } : r;
    return c.json({
      error: { code: "not_ready", message: why.message },
      ...(why.waitingFor ? { waitingFor: why.waitingFor } : {}),
    }, 503);
  });
  app.get("/metrics", async (c) => {
    const body = await metrics.registry.metrics();
    return c.body(body, 200, { "content-type": metrics.registry.contentType });
  });
  return app;
}

/**
 * The gateway of a node that is still starting (cluster mode waiting for NATS): `/healthz`
 * 200, `/readyz` 503 saying what it waits for, `/metrics`; anything else 503 `starting`.
 */
export function startingRoutes(metrics: Metrics, status: () => NotReady): Hono {
  const app = healthRoutes(metrics, status);
  app.all("*", (c) => {
    c.header("retry-after", "5");
    return c.json({ error: { code: "starting", message: status().message } }, 503);
  });
  return app;
}
