import assert from "node:assert/strict";
import { createApp } from "./app.ts";
import { hotTwinId } from "./twin_get.ts";
import { Tickets } from "./auth.ts";
import { TwinHost } from "../src/runtime/twin_host.ts";
import { memoryPersistence } from "../src/persistence/memory.ts";
import { memoryTransport } from "../src/transport/memory.ts";
import { systemClock } from "../src/runtime/clock.ts";
import { silentLogger } from "../src/obs/log.ts";
import { createMetrics } from "../src/obs/metrics.ts";
import type { TwinState } from "../actors/twin.ts";

function setup(apiKeys = new Map<string, { role: "viewer"; site?: string }>()) {
  const metrics = createMetrics();
  const transport = memoryTransport();
  const host = new TwinHost({
    persistence: memoryPersistence(),
    transport,
    clock: systemClock,
    logger: silentLogger,
    metrics,
  });
  let reads = 0;
  const counted = Object.assign(Object.create(host), {
    get: (id: string): Promise<TwinState | null> => {
      reads++;
      return host.get(id);
    },
  }) as TwinHost;
  const auth = { apiKeys, tickets: new Tickets(), twins: counted };
  const app = createApp({
    host: counted,
    transport,
    metrics,
    logger: silentLogger,
    ready: () => true,
    auth,
  });
  return {
    app,
    metrics,
    host,
    reads: () => reads,
    req: (path: string, init?: RequestInit) => app.request(path, init),
    [Symbol.asyncDispose]: () => host.close(),
  };
}

const headersOf = (r: Response) =>
  [...r.headers].filter(([k]) => k !== "x-request-id" && k !== "date");

Deno.test("hotTwinId: only /v1/twins/{valid id}, no query, no escape, no more segments", () => {
  assert.equal(hotTwinId("http://h:1/v1/twins/press-7"), "press-7");
  assert.equal(hotTwinId("http://[::1]:8080/v1/twins/a.b:c_d"), "a.b:c_d");
  for (
    const u of [
      "http://h/v1/twins/",
      "http://h/v1/twins/a/desired",
      "http://h/v1/twins/a?x=1",
      "http://h/v1/twins/bad%20id",
      "http://h/v1/twins:bulk",
      "http://h/v1/twinsx/a",
      `http://h/v1/twins/${"a".repeat(129)}`,
    ]
  ) assert.equal(hotTwinId(u), undefined, u);
});

Deno.test("fast GET answers exactly as the route: body, headers, request id, metrics", async () => {
  await using t = setup();
  await t.host.putAttributes("press-7", { site: "A" });
  const fast = await t.req("/v1/twins/press-7", { headers: { "x-request-id": "rq-1" } });
  const routed = await t.req("/v1/twins/press-7?via=router"); // a query: the router answers
  assert.equal(fast.status, 200);
  assert.equal(fast.headers.get("x-request-id"), "rq-1");
  assert.match(routed.headers.get("x-request-id") ?? "", /^[0-9a-f]{8}-\w+$/);
  assert.deepEqual(headersOf(fast), headersOf(routed));
  const body = await fast.text();
  assert.equal(body, await routed.text());
  assert.equal(body, JSON.stringify({ ...await t.host.get("press-7"), alarms: [] }));
  const text = await (await t.req("/metrics")).text();
  assert.match(
    text,
    /twinmill_http_requests_total\{route="\/v1\/twins\/:id",method="GET",status="200"\} 2/,
  );
  assert.match(
    text,
    /twinmill_http_request_duration_seconds_count\{route="\/v1\/twins\/:id",method="GET"\} 2/,
  );
});

Deno.test("fast GET: a change is never served from the cached body", async () => {
  await using t = setup();
  await t.host.putAttributes("p", { site: "A" });
  assert.equal((await (await t.req("/v1/twins/p")).json()).attributes.site, "A");
  await t.host.putAttributes("p", { site: "B" });
  const tw = await (await t.req("/v1/twins/p")).json();
  assert.equal(tw.attributes.site, "B");
  assert.equal(tw.version, 2);
});

Deno.test("fast GET: not found and bad ids answer as the route, reading the twin once", async () => {
  await using t = setup();
  const r = await t.req("/v1/twins/nope");
  assert.equal(r.status, 404);
  assert.deepEqual(await r.json(), {
    error: { code: "twin_not_found", message: 'Twin "nope" not found' },
  });
  assert.equal(t.reads(), 1);
  assert.equal(r.headers.get("content-type"), "application/json");
  const bad = await t.req("/v1/twins/bad%20id");
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error.code, "bad_twin_id");
  const text = await (await t.req("/metrics")).text();
  assert.match(text, /route="\/v1\/twins\/:id",method="GET",status="404"\} 1/);
});

Deno.test("with API keys configured, a GET is authenticated (the router answers)", async () => {
  await using t = setup(new Map([["k-a", { role: "viewer", site: "A" }]]));
  await t.host.putAttributes("a-1", { site: "A" });
  await t.host.putAttributes("b-1", { site: "B" });
  assert.equal((await t.req("/v1/twins/a-1")).status, 401);
  const auth = { headers: { authorization: "Bearer k-a" } };
  assert.equal((await t.req("/v1/twins/a-1", auth)).status, 200);
  assert.equal((await t.req("/v1/twins/b-1", auth)).status, 403);
});
