import assert from "node:assert/strict";
import { createApp } from "./app.ts";
import { type AuthOptions, Tickets } from "./auth.ts";
import { whoamiRoutes } from "./whoami.ts";
import { silentLogger } from "../src/obs/log.ts";
import { memoryHost } from "../src/runtime/testing.ts";

function setup(apiKeys: AuthOptions["apiKeys"]) {
  const { host, transport, metrics } = memoryHost();
  const auth: AuthOptions = { apiKeys, tickets: new Tickets(), twins: host };
  const app = createApp({
    host,
    transport,
    metrics,
    logger: silentLogger,
    ready: () => true,
    auth,
    extra: { "/v1/whoami": whoamiRoutes() },
  });
  return {
    req: (key?: string) =>
      app.request("/v1/whoami", key ? { headers: { authorization: `Bearer ${key}` } } : {}),
    [Symbol.asyncDispose]: () => host.close(),
  };
}

Deno.test("GET /v1/whoami: the caller's role and sites, never the key; any role; 401 without", async () => {
  await using t = setup(
    new Map([["viewer-key-0123456789", { role: "viewer" as const, site: "A" }], [
      "operator-key-0123456789",
      { role: "operator" as const },
    ]]),
  );
  const v = await t.req("viewer-key-0123456789");
  assert.equal(v.status, 200);
  const vb = await v.json();
  assert.deepEqual({ ...vb, id: undefined }, {
    id: undefined,
    role: "viewer",
    sites: ["A"],
    via: "api_key",
  });
  assert.match(vb.id, /^key:[0-9a-f]{12}$/);
  const o = await (await t.req("operator-key-0123456789")).json();
  assert.equal(o.role, "operator");
  assert.equal(o.sites, undefined);
  assert.equal((await t.req()).status, 401);
  assert.equal((await t.req("wrong-key-0123456789")).status, 401);
});

Deno.test("GET /v1/whoami without authentication configured: the anonymous admin", async () => {
  await using t = setup(new Map());
  assert.deepEqual(await (await t.req()).json(), {
    id: "anonymous",
    role: "admin",
    via: "anonymous",
  });
});
