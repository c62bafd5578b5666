import assert from "node:assert/strict";
import { healthRoutes, startingRoutes } from "./health.ts";
import { createMetrics } from "../src/obs/metrics.ts";

Deno.test("readyz: 200 when ready; 503 not_ready with the reason and what it waits for", async () => {
  const metrics = createMetrics();
  let ready: boolean | { message: string; waitingFor?: object } = true;
  const app = healthRoutes(metrics, () => ready);
  let res = await app.request("/readyz");
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: "ready" });
  ready = false;
  res = await app.request("/readyz");
  assert.equal(res.status, 503);
  assert.deepEqual(await res.json(), {
    error: { code: "not_ready", message: "Node is not ready" },
  });
  ready = { message: "NATS connection lost", waitingFor: { what: "NATS/JetStream" } };
  res = await app.request("/readyz");
  assert.equal(res.status, 503);
  assert.deepEqual(await res.json(), {
    error: { code: "not_ready", message: "NATS connection lost" },
    waitingFor: { what: "NATS/JetStream" },
  });
});

Deno.test("a starting node: healthz 200, readyz 503 saying what it waits for, the rest 503 starting", async () => {
  const waitingFor = {
    what: "NATS/JetStream",
    at: "nats://127.0.0.1:4222",
    reason: "cannot connect: connection refused",
    attempts: 3,
    since: "2026-01-01T00:00:00.000Z",
  };
  const message = "Waiting for NATS/JetStream at nats://127.0.0.1:4222";
  const app = startingRoutes(createMetrics(), () => ({ message, waitingFor }));
  const health = await app.request("/healthz");
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: "ok" });
  const ready = await app.request("/readyz");
  assert.equal(ready.status, 503);
  assert.deepEqual(await ready.json(), { error: { code: "not_ready", message }, waitingFor });
  const metrics = await app.request("/metrics");
  assert.equal(metrics.status, 200);
  await metrics.body?.cancel();
  const twin = await app.request("/v1/twins/press-1", { method: "PUT", body: "{}" });
  assert.equal(twin.status, 503);
  assert.equal(twin.headers.get("retry-after"), "5");
  assert.deepEqual(await twin.json(), { error: { code: "starting", message } });
});
