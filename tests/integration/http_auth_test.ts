/**
 * Application authentication against a real node: API keys and JWTs, each role against each
 * route class, site scopes, the WebSocket ticket, rate limits, and no secret in the log.
 */
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { getJson, startNode, waitFor } from "../harness/mod.ts";

const VIEWER = "viewer-key-0123456789";
const OPERATOR = "operator-key-0123456789";
const ADMIN = "admin-key-0123456789abc";
const SITE_A = "site-a-admin-key-0123456";
const JWT_SECRET = "jwt-secret-for-tests-0123456789abcdef";

const call = (key: string | undefined, method = "GET", body?: unknown): RequestInit => ({
  method,
  headers: {
    ...(key ? { authorization: `Bearer ${key}` } : {}),
    ...(body === undefined ? {} : { "content-type": "application/json" }),
  },
  body: body === undefined ? undefined : JSON.stringify(body),
});

async function jwt(claims: Record<string, unknown>, exp = "5m", secret = JWT_SECRET) {
  return await new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setSubject("alice")
    .setExpirationTime(exp).sign(new TextEncoder().encode(secret));
}

Deno.test("http auth: roles, site scopes, JWTs, tickets and rate limits", async () => {
  await using node = await startNode({
    TWINMILL_API_KEYS: `${VIEWER}:viewer,${OPERATOR}:operator,${ADMIN}:admin,${SITE_A}:admin:A`,
    TWINMILL_JWT_SECRET: JWT_SECRET,
    TWINMILL_HTTP_RATE: "20",
  });
  const u = (path: string) => `${node.httpUrl}${path}`;
  const status = async (path: string, init: RequestInit) => (await getJson(u(path), init)).status;

  // unauthenticated and wrong keys
  const anon = await getJson(u("/v1/twins/x"), call(undefined));
  assert.equal(anon.status, 401);
  assert.equal(anon.body.error.code, "unauthorized");
  assert.equal(await status("/v1/twins/x", call("not-a-key")), 401);
  assert.equal((await fetch(u("/healthz"))).status, 200, "health stays open");

  // provisioning is admin; a site-scoped admin only within its site
  const attrs = (site: string) => ({ attributes: { site, type: "press" } });
  assert.equal(await status("/v1/twins/a-1", call(OPERATOR, "PUT", attrs("A"))), 403);
  assert.equal(await status("/v1/twins/a-1", call(SITE_A, "PUT", attrs("A"))), 201);
  assert.equal(await status("/v1/twins/b-1", call(SITE_A, "PUT", attrs("B"))), 403);
  assert.equal(await status("/v1/twins/b-1", call(ADMIN, "PUT", attrs("B"))), 201);

  // reads: any role; the scope hides other sites
  assert.equal(await status("/v1/twins/b-1", call(VIEWER)), 200);
  assert.equal(await status("/v1/twins/b-1", call(SITE_A)), 403);
  assert.equal(await status("/v1/twins/a-1", call(SITE_A)), 200);
  assert.equal(await status("/v1/twins", call(SITE_A)), 403, "a scoped list must filter by site");
  const listA = await getJson(u("/v1/twins?site=A"), call(SITE_A));
  assert.deepEqual(listA.body.items.map((t: { id: string }) => t.id), ["a-1"]);
  assert.equal(await status("/v1/twins?site=B", call(SITE_A)), 403);

  // desired changes: operator and up
  const patch = { desired: 1 };
  assert.equal(await status("/v1/twins/b-1/desired", call(VIEWER, "PATCH", patch)), 403);
  assert.equal(await status("/v1/twins/b-1/desired", call(OPERATOR, "PATCH", patch)), 200);
  assert.equal(await status("/v1/twins/b-1/desired", call(SITE_A, "PATCH", patch)), 403);

  // profiles and credentials: admin; a scoped admin may not change global profiles
  const profile = { rules: [] };
  assert.equal(await status("/v1/profiles/p", call(OPERATOR, "PUT", profile)), 403);
  assert.equal(await status("/v1/profiles/p", call(SITE_A, "PUT", profile)), 403);
  assert.equal(await status("/v1/profiles/p", call(ADMIN, "PUT", profile)), 201);
  assert.equal(await status("/v1/profiles/p", call(VIEWER)), 200);
  assert.equal(await status("/v1/twins/a-1/credentials", call(OPERATOR, "POST")), 403);
  const cred = await getJson(u("/v1/twins/a-1/credentials"), call(SITE_A, "POST"));
  assert.equal(cred.status, 201);
  assert.equal(await status("/v1/twins/b-1/credentials", call(SITE_A, "POST")), 403);

  // JWTs: role and sites from the claims; expired and forged ones refused
  const jwtViewer = await jwt({ role: "viewer", sites: ["B"] });
  assert.equal(await status("/v1/twins/b-1", call(jwtViewer)), 200);
  assert.equal(await status("/v1/twins/a-1", call(jwtViewer)), 403);
  assert.equal(await status("/v1/twins/b-1/desired", call(jwtViewer, "PATCH", patch)), 403);
  const expired = await jwt({ role: "admin" }, "-2m");
  const e = await getJson(u("/v1/twins/b-1"), call(expired));
  assert.equal(e.status, 401);
  assert.match(e.body.error.message, /expired/);
  const forged = await jwt({ role: "admin" }, "5m", "another-secret-0123456789abcdefghij");
  assert.equal(await status("/v1/twins/b-1", call(forged)), 401);

  // the WebSocket: a single-use ticket instead of a header
  const t = await getJson(u("/v1/stream/tickets"), call(VIEWER, "POST"));
  assert.equal(t.status, 201);
  const ws = new WebSocket(
    `${node.httpUrl.replace("http", "ws")}/v1/stream?ticket=${t.body.ticket}`,
  );
  await new Promise((resolve, reject) => ((ws.onopen = resolve), (ws.onerror = reject)));
  ws.close();
  await new Promise((r) => (ws.onclose = r));
  const reused = await fetch(u(`/v1/stream?ticket=${t.body.ticket}`));
  assert.equal(reused.status, 401, "a ticket works once");
  await reused.body?.cancel();

  // rate limit: 20/s per key with a burst of 40
  const results = await Promise.all(
    Array.from({ length: 80 }, () => fetch(u("/v1/twins/b-1"), call(VIEWER))),
  );
  const limited = results.filter((r) => r.status === 429);
  assert.ok(limited.length > 0, "some requests were limited");
  assert.ok(Number(limited[0].headers.get("retry-after")) >= 1);
  for (const r of results) await r.body?.cancel();
  await waitFor(async () => (await fetch(u("/healthz"))).ok);

  // the audit log: changes, credential issue, refusals — admins only
  assert.equal(await status("/v1/audit", call(OPERATOR)), 403);
  assert.equal(await status("/v1/audit", call(SITE_A)), 403);
  const audit = await getJson(u("/v1/audit?limit=1000"), call(ADMIN));
  assert.equal(audit.status, 200);
  // deno-lint-ignore no-explicit-any
  const actions = audit.body.items.map((e: any) => `${e.action}:${e.result}`);
  for (
    const a of [
      "twin.put:ok",
      "desired.patch:ok",
      "profile.put:ok",
      "credential.create:ok",
      "auth.failure:denied",
      "auth.forbidden:denied",
      "auth.rate_limited:denied",
    ]
  ) assert.ok(actions.includes(a), `audit has ${a}: ${actions.join(" ")}`);
  const mine = await getJson(u("/v1/audit?action=credential.&limit=10"), call(ADMIN));
  // deno-lint-ignore no-explicit-any
  assert.ok(mine.body.items.every((e: any) => e.action.startsWith("credential.")));
  assert.ok(mine.body.items[0].actor.startsWith("key:"), "actor is a key fingerprint");
  assert.ok(mine.body.items[0].requestId, "entries carry the request id");
  const raw = await Deno.readTextFile(`${node.dataDir}/audit.log`);
  for (const s of [VIEWER, OPERATOR, ADMIN, SITE_A, cred.body.credentials.token]) {
    assert.ok(!raw.includes(s), "a secret is in the audit log");
  }

  // refusals are logged, and no secret is: keys, JWTs, the device token
  await node.waitForLog((r) => r.msg === "request refused");
  for (
    const s of [VIEWER, OPERATOR, ADMIN, SITE_A, JWT_SECRET, jwtViewer, cred.body.credentials.token]
  ) {
    assert.ok(!node.logs.some((l) => l.includes(s)), `a secret is in the log`);
  }
});
