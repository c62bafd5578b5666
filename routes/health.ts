/**
 * Liveness, readiness and Prometheus metrics.
 * @module
 */
import { Hono } from "hono";
import type { Metrics } from "../src/obs/metrics.ts";

/** Health and metrics routes. */
export function healthRoutes(metrics: Metrics, ready: () => boolean): Hono {
  const app = new Hono();
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", (c) => {
    const ok = ready();
    return c.json(
      ok ? { status: "ready" } : { error: { code: "not_ready", message: "Node is not ready" } },
      ok ? 200 : 503,
    );
  });
  app.get("/metrics", async (c) => {
    const body = await metrics.registry.metrics();
    return c.body(body, 200, { "content-type": metrics.registry.contentType });
  });
  return app;
}
