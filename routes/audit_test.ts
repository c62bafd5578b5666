import assert from "node:assert/strict";
import { OpenAPIHono } from "@hono/zod-openapi";
import { silentLogger } from "../src/obs/log.ts";
import { AuditLog } from "../src/security/audit.ts";
import { auditRoutes, parseSince } from "./audit.ts";
import { errorHandler } from "./errors.ts";

const T0 = Date.UTC(2024, 4, 1, 12, 0, 0);

/** The routes at `/v1/audit` over a real AuditLog in a temp dir. */
async function setup() {
  const dir = await Deno.makeTempDir({ prefix: "twinmill_audit_routes_" });
  const log = await AuditLog.open(dir);
  const app = new OpenAPIHono();
  app.onError(errorHandler(silentLogger));
  app.route("/v1/audit", auditRoutes(log));
  return {
    log,
    app,
    get: async (path: string) => {
      const r = await app.request(path);
      return { status: r.status, body: await r.json() };
    },
    [Symbol.asyncDispose]: async () => {
      await log.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function assertError(r: { status: number; body: unknown }, message: RegExp) {
  assert.equal(r.status, 400);
  const body = r.body as { error: { code: string; message: string } };
  assert.deepEqual(Object.keys(body), ["error"]);
  assert.equal(body.error.code, "bad_request");
  assert.match(body.error.message, message);
}

Deno.test("GET /v1/audit: newest first, ts as RFC 3339, optional fields as stored", async () => {
  await using t = await setup();
  t.log.record({
    ts: T0,
    requestId: "req-1",
    actor: "jwt:alice",
    role: "admin",
    action: "credential.create",
    target: "press-7",
    result: "ok",
    detail: { credentialId: "c-1", token: "tok-secret" },
  });
  t.log.record({ ts: T0 + 1500, actor: "anonymous", action: "auth.failure", result: "denied" });
  const r = await t.get("/v1/audit");
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, {
    items: [
      {
        ts: "2024-05-01T12:00:01.500Z",
        actor: "anonymous",
        action: "auth.failure",
        result: "denied",
      },
      {
        ts: "2024-05-01T12:00:00.000Z",
        requestId: "req-1",
        actor: "jwt:alice",
        role: "admin",
        action: "credential.create",
        target: "press-7",
        result: "ok",
        detail: { credentialId: "c-1", token: "[redacted]" },
      },
    ],
  });
});

Deno.test("GET /v1/audit: limit defaults to 100 and goes up to 1000", async () => {
  await using t = await setup();
  for (let i = 0; i < 1001; i++) {
    t.log.record({ ts: T0 + i, actor: "jwt:bot", action: "twin.put", result: "ok" });
  }
  const page = await t.get("/v1/audit");
  assert.equal(page.body.items.length, 100);
  assert.equal(page.body.items[0].ts, new Date(T0 + 1000).toISOString());
  assert.equal((await t.get("/v1/audit?limit=1000")).body.items.length, 1000);
  assert.deepEqual(
    (await t.get("/v1/audit?limit=1")).body.items.map((e: { ts: string }) => e.ts),
    [new Date(T0 + 1000).toISOString()],
  );
});

Deno.test("GET /v1/audit filters by since (RFC 3339 or ms), actor and action (exact or prefix.)", async () => {
  await using t = await setup();
  const rows = [
    ["jwt:alice", "credential.create"],
    ["jwt:alice", "credential.revoke"],
    ["key:ab12cd…", "desired.patch"],
    ["device:press-7", "acl.denied"],
    ["jwt:alice", "credentials"],
  ] as const;
  rows.forEach(([actor, action], i) =>
    t.log.record({ ts: T0 + i * 1000, actor, action, result: "ok" })
  );
  const actions = async (q: string) =>
    (await t.get(`/v1/audit?${q}`)).body.items.map((e: { action: string }) => e.action);

  assert.deepEqual(await actions("since=2024-05-01T12:00:03Z"), ["credentials", "acl.denied"]);
  assert.deepEqual(await actions("since=2024-05-01T14:00:03%2B02:00"), [
    "credentials",
    "acl.denied",
  ]);
  assert.deepEqual(await actions(`since=${T0 + 3000}`), ["credentials", "acl.denied"]);
  assert.deepEqual(await actions("since=2024-05-02"), []);
  assert.deepEqual(await actions("actor=jwt%3Aalice"), [
    "credentials",
    "credential.revoke",
    "credential.create",
  ]);
  assert.deepEqual(await actions("action=credential."), ["credential.revoke", "credential.create"]);
  assert.deepEqual(await actions("action=credential.create"), ["credential.create"]);
  assert.deepEqual(await actions("action=credential"), []);
  assert.deepEqual(await actions(`actor=key%3Aab12cd%E2%80%A6`), ["desired.patch"]);
  assert.deepEqual(
    await actions(`actor=jwt%3Aalice&action=credential.&since=${T0 + 1000}&limit=5`),
    ["credential.revoke"],
  );
});

Deno.test("GET /v1/audit: a bad since or limit is 400 in the error envelope", async () => {
  await using t = await setup();
  for (const since of ["yesterday", "2024-13-01", "2024-05-01T12:00:00", "", "1e3", "12.5"]) {
    assertError(await t.get(`/v1/audit?since=${since}`), /^since: must be an RFC 3339 time/);
  }
  for (const limit of ["0", "1001", "ten", "2.5"]) {
    assertError(await t.get(`/v1/audit?limit=${limit}`), /^limit: /);
  }
  assertError(await t.get("/v1/audit?actor="), /^actor: /);
});

Deno.test("parseSince: digits are ms, RFC 3339 times and dates are parsed, the rest is undefined", () => {
  assert.equal(parseSince(String(T0)), T0);
  assert.equal(parseSince("0"), 0);
  assert.equal(parseSince("2024-05-01T12:00:00.250Z"), T0 + 250);
  assert.equal(parseSince("2024-05-01t12:00:00z"), T0);
  assert.equal(parseSince("2024-05-01T13:00:00+01:00"), T0);
  assert.equal(parseSince("2024-05-01"), Date.UTC(2024, 4, 1));
  for (const bad of ["", "now", "2024-05-01T25:00:00Z", "9999999999999999", "2024-05-01 12:00Z"]) {
    assert.equal(parseSince(bad), undefined, bad);
  }
});

Deno.test("the audit route appears in the OpenAPI document", () => {
  const app = new OpenAPIHono();
  app.route("/v1/audit", auditRoutes({ query: () => Promise.resolve([]) }));
  const doc = app.getOpenAPIDocument({ openapi: "3.0.3", info: { title: "t", version: "0" } });
  const get = doc.paths["/v1/audit"]?.get;
  assert.ok(get, "GET /v1/audit missing");
  assert.deepEqual(get.parameters?.map((p) => "name" in p && p.name), [
    "since",
    "actor",
    "action",
    "limit",
  ]);
  assert.ok(doc.components?.schemas?.AuditEntry);
});
