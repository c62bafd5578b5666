/**
 * Liveness, readiness and Prometheus metrics.
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Metrics } from "../src/obs/metrics.ts";
import { ErrorSchema, json } from "./schemas.ts";

/** Why a node is not ready: the message and what it waits for, in the 503 of `/readyz`. */
export interface NotReady {
  message: string;
  /** What the node waits for, e.g. `{what: "NATS/JetStream", at, reason, attempts, since}`. */
  waitingFor?: object;
}

/** Readiness: `true`, `false`, or why not. */
export type Readiness = boolean | NotReady;

const healthz = createRoute({
  method: "get",
  path: "/healthz",
  tags: ["operations"],
  summary: "Liveness: the process serves HTTP",
  responses: { 200: json(z.object({ status: z.literal("ok") }), "Alive") },
});

const readyz = createRoute({
  method: "get",
  path: "/readyz",
  tags: ["operations"],
  summary: "Readiness: owns its shards and its transport is up (cluster: NATS and JetStream)",
  responses: {
    200: json(z.object({ status: z.literal("ready") }), "Ready"),
    503: json(
      ErrorSchema.extend({
        waitingFor: z.record(z.string(), z.unknown()).optional().openapi({
          description: 'What the node waits for, e.g. `{what: "NATS/JetStream", at, reason}`',
        }),
      }),
      "Not ready (code `not_ready`)",
    ),
  },
});

const metricsRoute = createRoute({
  method: "get",
  path: "/metrics",
  tags: ["operations"],
  summary: "Prometheus metrics of this node (text exposition format)",
  responses: {
    200: {
      description: "Prometheus text format 0.0.4",
      content: { "text/plain": { schema: z.string() } },
    },
  },
});

/** Health and metrics routes. */
export function healthRoutes(metrics: Metrics, ready: () => Readiness): OpenAPIHono {
  const app = new OpenAPIHono();
  app.openapi(healthz, (c) => c.json({ status: "ok" as const }, 200));
  app.openapi(readyz, (c) => {
    const r = ready();
    if (r === true) return c.json({ status: "ready" as const }, 200);
    const why = r === false ? { message: "Node is not ready" } : r;
    return c.json({
      error: { code: "not_ready", message: why.message },
      ...(why.waitingFor ? { waitingFor: why.waitingFor as Record<string, unknown> } : {}),
    }, 503);
  });
  app.openapi(metricsRoute, async (c) => {
    const body = await metrics.registry.metrics();
    return c.text(body, 200, { "Content-Type": metrics.registry.contentType });
  });
  return app;
}

/**
 * The gateway of a node that is still starting (cluster mode waiting for NATS): `/healthz`
 * 200, `/readyz` 503 saying what it waits for, `/metrics`; anything else 503 `starting`.
 */
export function startingRoutes(metrics: Metrics, status: () => NotReady): OpenAPIHono {
  const app = healthRoutes(metrics, status);
  app.all("*", (c) => {
    c.header("retry-after", "5");
    return c.json({ error: { code: "starting", message: status().message } }, 503);
  });
  return app;
}
