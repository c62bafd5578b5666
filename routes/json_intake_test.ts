import assert from "node:assert/strict";
import { createApp } from "./app.ts";
import { silentLogger } from "../src/obs/log.ts";
import { DEFAULT_JSON_LIMITS, type JsonLimits } from "../actors/json_intake.ts";
import { memoryHost } from "../src/runtime/testing.ts";

function setup(jsonLimits?: JsonLimits) {
  const { host, transport, metrics } = memoryHost();
  const app = createApp({
    host,
    transport,
    metrics,
    logger: silentLogger,
    ready: () => true,
    jsonLimits,
  });
  return {
    host,
    async send(method: string, path: string, body: string, type = "application/json") {
      const headers: Record<string, string> = type ? { "content-type": type } : {};
      // bytes: fetch gives a string body a text/plain content type of its own
      const r = await app.request(path, { method, headers, body: new TextEncoder().encode(body) });
      return { status: r.status, body: await r.json() };
    },
    [Symbol.asyncDispose]: () => host.close(),
  };
}

Deno.test("HTTP intake: each limit is a 400 whose code names it; nothing is applied", async () => {
  await using t = setup({ ...DEFAULT_JSON_LIMITS, maxString: 100, maxKeys: 5, maxArray: 3 });
  assert.equal((await t.send("PUT", "/v1/twins/x", '{"attributes":{}}')).status, 201);
  const cases: Array<[string, string]> = [
    [`{"a":${"[".repeat(10_000)}${"]".repeat(10_000)}}`, "payload_too_deep"],
    ['{"n":1e400}', "bad_number"],
    [`{"s":"${"x".repeat(101)}"}`, "string_too_long"],
    ['{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6}', "too_many_keys"],
    ['{"a":[1,2,3,4]}', "array_too_long"],
    ['{"__proto__":{"admin":true}}', "bad_key"],
  ];
  for (const [body, code] of cases) {
    const r = await t.send("PATCH", "/v1/twins/x/desired", body);
    assert.equal(r.status, 400, code);
    assert.equal(r.body.error.code, code);
  }
  // merge-patch+json and a body without a content type are read by the intake too
  const mp = await t.send(
    "PATCH",
    "/v1/twins/x/desired",
    '{"n":1e400}',
    "application/merge-patch+json",
  );
  assert.equal(mp.body.error.code, "bad_number");
  const bare = await t.send("PUT", "/v1/twins/x", '{"attributes":{"n":-1e999}}', "");
  assert.equal(bare.body.error.code, "bad_number");
  const twin = await t.host.get("x");
  assert.equal(twin?.version, 1);
  assert.deepEqual(twin?.desired, {});
});

Deno.test("HTTP intake: within the limits bodies reach their routes as before", async () => {
  await using t = setup();
  assert.equal((await t.send("PUT", "/v1/twins/y", '{"attributes":{"site":"A"}}')).status, 201);
  const ok = await t.send("PATCH", "/v1/twins/y/desired", '{"constructor":{"prototype":1},"n":-0}');
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.deepEqual(ok.body.desired, { constructor: { prototype: 1 }, n: 0 });
  // malformed JSON is still the route's answer
  const bad = await t.send("PATCH", "/v1/twins/y/desired", "{nope");
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, "bad_request");
  // not JSON by its content type: not the intake's business
  const text = await t.send("PATCH", "/v1/twins/y/desired", `{"n":1e400}`, "text/plain");
  assert.notEqual(text.body.error?.code, "bad_number");
});
