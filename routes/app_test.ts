import assert from "node:assert/strict";
import { createApp } from "./app.ts";
import { silentLogger } from "../src/obs/log.ts";
import { memoryHost } from "../src/runtime/testing.ts";

function setup() {
  const { host, transport, metrics } = memoryHost();
  const app = createApp({ host, transport, metrics, logger: silentLogger, ready: () => true });
  return {
    app,
    metrics,
    host,
    req: (path: string, init?: RequestInit) => app.request(path, init),
    [Symbol.asyncDispose]: () => host.close(),
  };
}

const jsonReq = (method: string, body: unknown, headers: Record<string, string> = {}) => ({
  method,
  headers: { "content-type": "application/json", ...headers },
  body: typeof body === "string" ? body : JSON.stringify(body),
});

Deno.test("GET unknown twin -> 404 twin_not_found envelope; bad id -> 400", async () => {
  await using t = await setup();
  const r = await t.req("/v1/twins/nope");
  assert.equal(r.status, 404);
  assert.deepEqual((await r.json()).error.code, "twin_not_found");
  const bad = await t.req("/v1/twins/bad%20id");
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error.code, "bad_twin_id");
});

Deno.test("PUT provisions (201 then 200), GET returns the contract's shape", async () => {
  await using t = await setup();
  const r1 = await t.req(
    "/v1/twins/press-7",
    jsonReq("PUT", { attributes: { site: "A", type: "press" } }),
  );
  assert.equal(r1.status, 201);
  const r2 = await t.req("/v1/twins/press-7", jsonReq("PUT", { attributes: { site: "B" } }));
  assert.equal(r2.status, 200);
  const tw = await (await t.req("/v1/twins/press-7")).json();
  assert.deepEqual(Object.keys(tw).sort(), [
    "alarms",
    "attributes",
    "connectivity",
    "delta",
    "desired",
    "id",
    "metadata",
    "reported",
    "version",
  ]);
  assert.deepEqual(tw.attributes, { site: "B" });
  assert.equal(tw.version, 2);
});

Deno.test("PATCH desired: merge patch, If-Match stale -> 412 version_conflict, unknown -> 404", async () => {
  await using t = await setup();
  await t.req("/v1/twins/p", jsonReq("PUT", { attributes: {} }));
  const ok = await t.req(
    "/v1/twins/p/desired",
    jsonReq("PATCH", { speed: 5, cfg: { a: 1 } }, { "if-match": "1" }),
  );
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get("etag"), '"2"');
  const body = await ok.json();
  assert.deepEqual(body.desired, { speed: 5, cfg: { a: 1 } });
  assert.deepEqual(body.delta, { speed: 5, cfg: { a: 1 } });
  const mp = await t.req("/v1/twins/p/desired", {
    method: "PATCH",
    headers: { "content-type": "application/merge-patch+json" },
    body: JSON.stringify({ cfg: null }),
  });
  assert.equal(mp.status, 200);
  assert.deepEqual((await mp.json()).desired, { speed: 5 });
  const stale = await t.req(
    "/v1/twins/p/desired",
    jsonReq("PATCH", { speed: 6 }, { "if-match": "1" }),
  );
  assert.equal(stale.status, 412);
  assert.equal((await stale.json()).error.code, "version_conflict");
  const missing = await t.req("/v1/twins/zz/desired", jsonReq("PATCH", { speed: 6 }));
  assert.equal(missing.status, 404);
});

Deno.test("bad JSON -> 400, non-object patch -> 400, oversized body -> 413, all in the envelope", async () => {
  await using t = await setup();
  await t.req("/v1/twins/p", jsonReq("PUT", { attributes: {} }));
  const bad = await t.req("/v1/twins/p/desired", jsonReq("PATCH", "{nope"));
  assert.equal(bad.status, 400);
  assert.equal((await bad.json()).error.code, "bad_request");
  const arr = await t.req("/v1/twins/p/desired", jsonReq("PATCH", [1, 2]));
  assert.equal(arr.status, 400);
  const attrs = await t.req("/v1/twins/p", jsonReq("PUT", { attributes: { a: { nested: 1 } } }));
  assert.equal(attrs.status, 400);
  assert.match((await attrs.json()).error.message, /attributes\.a/);
  const big = await t.req(
    "/v1/twins/p/desired",
    jsonReq("PATCH", { x: "y".repeat(1024 * 1024 + 10) }),
  );
  assert.equal(big.status, 413);
  assert.equal((await big.json()).error.code, "payload_too_large");
});

Deno.test("list: cursor paging and attribute filters", async () => {
  await using t = await setup();
  for (let i = 0; i < 7; i++) {
    await t.req(`/v1/twins/d${i}`, jsonReq("PUT", { attributes: { site: i % 2 ? "A" : "B" } }));
  }
  const seen: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const r = await t.req(`/v1/twins?limit=3${cursor ? `&cursor=${cursor}` : ""}`);
    const body = await r.json();
    seen.push(...body.items.map((x: { id: string }) => x.id));
    cursor = body.cursor;
    pages++;
  } while (cursor && pages < 10);
  assert.deepEqual(seen, ["d0", "d1", "d2", "d3", "d4", "d5", "d6"]);
  const a = await (await t.req("/v1/twins?site=A")).json();
  assert.deepEqual(a.items.map((x: { id: string }) => x.id), ["d1", "d3", "d5"]);
  assert.equal(a.cursor, undefined);
  assert.equal((await t.req("/v1/twins?limit=0")).status, 400);
});

Deno.test("history without INFLUX_URL -> 503 history_unavailable", async () => {
  await using t = await setup();
  const r = await t.req("/v1/twins/p/history?field=temp");
  assert.equal(r.status, 503);
  assert.equal((await r.json()).error.code, "history_unavailable");
});

Deno.test("openapi.json is an OpenAPI 3 document with the contract's routes; /docs serves HTML", async () => {
  await using t = await setup();
  const doc = await (await t.req("/openapi.json")).json();
  assert.match(doc.openapi, /^3\./);
  for (
    const p of ["/v1/twins/{id}", "/v1/twins", "/v1/twins/{id}/desired", "/v1/twins/{id}/history"]
  ) {
    assert.ok(doc.paths[p], `missing ${p}`);
  }
  const docs = await t.req("/docs");
  assert.equal(docs.status, 200);
  assert.match(await docs.text(), /swagger/i);
});

Deno.test("metrics: HTTP requests by route pattern and status, no twin ids in labels", async () => {
  await using t = await setup();
  await t.req("/v1/twins/secret-device-42");
  const text = await (await t.req("/metrics")).text();
  assert.match(
    text,
    /twinmill_http_requests_total\{route="\/v1\/twins\/:id",method="GET",status="404"\} 1/,
  );
  assert.doesNotMatch(text, /secret-device-42/);
  assert.match(text, /# TYPE twinmill_mqtt_messages_rejected_total counter/);
  assert.equal((await t.req("/healthz")).status, 200);
  assert.equal((await t.req("/readyz")).status, 200);
});
