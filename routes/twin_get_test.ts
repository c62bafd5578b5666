import assert from "node:assert/strict";
import { createApp } from "./app.ts";
import { hotTwinId } from "./twin_get.ts";
import { type AuthOptions, type BearerVerifier, Tickets } from "./auth.ts";
import { RateLimiter } from "../src/security/rate_limit.ts";
import { createJwtVerifier } from "../src/security/jwt.ts";
import { SignJWT } from "jose";
import { TwinHost } from "../src/runtime/twin_host.ts";
import { silentLogger } from "../src/obs/log.ts";
import type { TwinState } from "../actors/twin.ts";
import { memoryHost } from "../src/runtime/testing.ts";

/** Who read a twin: the fast path (twin_get.ts), the route (twins.ts) or the scope check (auth.ts). */
const readerOf = (stack: string) => /routes\/(twin_get|twins|auth)\.ts/.exec(stack)?.[1] ?? "?";

function setup(
  o: { apiKeys?: AuthOptions["apiKeys"]; jwt?: BearerVerifier; limiter?: RateLimiter } = {},
) {
  const { host, transport, metrics } = memoryHost();
  const readers: string[] = [];
  const counted = Object.assign(Object.create(host), {
    get: (id: string): Promise<TwinState | null> => {
      readers.push(readerOf(new Error().stack ?? ""));
      return host.get(id);
    },
  }) as TwinHost;
  const denied: string[] = [];
  const auth: AuthOptions = {
    apiKeys: o.apiKeys ?? new Map(),
    jwt: o.jwt,
    limiter: o.limiter,
    tickets: new Tickets(),
    twins: counted,
    denied: (c, who, status, reason) =>
      denied.push(`${status} ${who} ${c.req.method} ${c.req.path} ${reason}`),
  };
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
    denied,
    /** Who read twins since the last call. */
    readers: () => readers.splice(0),
    reads: () => readers.length,
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

const bearer = (token: string, more: Record<string, string> = {}) => ({
  headers: { authorization: `Bearer ${token}`, ...more },
});

/** The response as bytes that must match: status, headers but the request id and date, body. */
const wire = async (r: Response) => ({
  status: r.status,
  headers: headersOf(r),
  body: await r.text(),
});

Deno.test("with API keys: a valid key is served by the fast path, as the router serves it", async () => {
  await using t = setup({ apiKeys: new Map([["k-v", { role: "viewer" }]]) });
  await t.host.putAttributes("a-1", { site: "A" });
  const fast = await t.req("/v1/twins/a-1", bearer("k-v", { "x-request-id": "rq-7" }));
  assert.deepEqual(t.readers(), ["twin_get"]);
  assert.equal(fast.headers.get("x-request-id"), "rq-7");
  const routed = await t.req("/v1/twins/a-1?via=router", bearer("k-v"));
  assert.deepEqual(t.readers(), ["twins"]);
  const f = await wire(fast);
  assert.equal(f.status, 200);
  assert.deepEqual(f, await wire(routed));
  const text = await (await t.req("/metrics")).text();
  assert.match(text, /route="\/v1\/twins\/:id",method="GET",status="200"\} 2/);
  assert.deepEqual(t.denied, []);
});

Deno.test("with API keys: missing or invalid keys are refused by the router, audited once", async () => {
  await using t = setup({ apiKeys: new Map([["k-v", { role: "viewer" }]]) });
  await t.host.putAttributes("a-1", { site: "A" });
  for (const init of [undefined, bearer("wrong"), { headers: { authorization: "Basic eDp5" } }]) {
    const r = await wire(await t.req("/v1/twins/a-1", init));
    assert.equal(r.status, 401);
    assert.deepEqual(r, await wire(await t.req("/v1/twins/a-1?via=router", init)));
  }
  assert.deepEqual(t.readers(), []);
  const why = "Authentication required: send Authorization: Bearer <API key or JWT>";
  assert.deepEqual(t.denied, [
    `401 unknown GET /v1/twins/a-1 ${why}`,
    `401 unknown GET /v1/twins/a-1 ${why}`,
    "401 unknown GET /v1/twins/a-1 Invalid API key or token",
    "401 unknown GET /v1/twins/a-1 Invalid API key or token",
    `401 unknown GET /v1/twins/a-1 ${why}`,
    `401 unknown GET /v1/twins/a-1 ${why}`,
  ]);
  const text = await (await t.req("/metrics", bearer("k-v"))).text();
  assert.match(text, /route="\/v1\/twins\/:id",method="GET",status="401"\} 6/);
});

Deno.test("with API keys: a viewer scoped to site A reads A's twins fast, B's are refused as before", async () => {
  await using t = setup({ apiKeys: new Map([["k-a", { role: "viewer", site: "A" }]]) });
  await t.host.putAttributes("a-1", { site: "A" });
  await t.host.putAttributes("b-1", { site: "B" });
  const a = await t.req("/v1/twins/a-1", bearer("k-a"));
  assert.equal(a.status, 200);
  assert.deepEqual(t.readers(), ["auth", "twin_get"]); // the scope check, then the read
  const b = await wire(await t.req("/v1/twins/b-1", bearer("k-a")));
  assert.equal(b.status, 403);
  assert.deepEqual(t.readers(), ["auth"]);
  assert.deepEqual(b, await wire(await t.req("/v1/twins/b-1?via=router", bearer("k-a"))));
  assert.equal(t.denied.length, 2);
  assert.match(t.denied[0], /^403 key:\w+ GET \/v1\/twins\/b-1 Twin "b-1" is not in your sites$/);
  assert.equal(t.denied[1], t.denied[0]);
  // not found: the route answers from the read the fast path began, admitted once
  t.readers();
  const nope = await t.req("/v1/twins/nope", bearer("k-a"));
  assert.equal(nope.status, 404);
  assert.equal((await nope.json()).error.code, "twin_not_found");
  assert.deepEqual(t.readers(), ["auth", "twin_get"]);
});

Deno.test("with API keys: a fast GET takes one rate-limit token, a 429 is the router's", async () => {
  await using t = setup({
    apiKeys: new Map([["k-v", { role: "viewer" }]]),
    limiter: new RateLimiter({ rate: 0.001, burst: 2, now: () => 0 }),
  });
  await t.host.putAttributes("a-1", { site: "A" });
  assert.equal((await t.req("/v1/twins/a-1", bearer("k-v"))).status, 200);
  assert.equal((await t.req("/v1/twins/nope", bearer("k-v"))).status, 404); // admitted once
  const r = await t.req("/v1/twins/a-1", bearer("k-v"));
  assert.equal(r.status, 429);
  assert.equal(r.headers.get("retry-after"), "1000");
  assert.equal((await r.json()).error.code, "rate_limited");
  assert.deepEqual(t.readers(), ["twin_get", "twin_get"]);
  assert.deepEqual(t.denied.map((d) => d.split(" ")[0]), ["429"]);
});

Deno.test("with JWT: a valid token is served by the fast path, a bad one refused as before", async () => {
  const secret = "twin-get-test-secret-0123456789abcdef";
  await using t = setup({ jwt: await createJwtVerifier({ secret }) });
  await t.host.putAttributes("a-1", { site: "A" });
  await t.host.putAttributes("b-1", { site: "B" });
  const sign = (claims: Record<string, unknown>, key = secret) =>
    new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setExpirationTime("5m")
      .sign(new TextEncoder().encode(key));
  const good = await sign({ sub: "ann", role: "viewer", sites: ["A"] });
  const fast = await t.req("/v1/twins/a-1", bearer(good));
  assert.deepEqual(t.readers(), ["auth", "twin_get"]);
  assert.deepEqual(await wire(fast), await wire(await t.req("/v1/twins/a-1?x", bearer(good))));
  assert.equal((await t.req("/v1/twins/b-1", bearer(good))).status, 403);
  const forged = await sign({ sub: "eve", role: "admin" }, "x".repeat(40));
  const bad = await wire(await t.req("/v1/twins/a-1", bearer(forged)));
  assert.equal(bad.status, 401);
  assert.deepEqual(bad, await wire(await t.req("/v1/twins/a-1?x", bearer(forged))));
  assert.deepEqual(t.denied.map((d) => d.split(" ").slice(0, 2).join(" ")), [
    "403 jwt:ann",
    "401 unknown",
    "401 unknown",
  ]);
});
