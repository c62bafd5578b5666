/**
 * Adversarial: JWT bearer tokens against a node. An expired token used to be accepted for up
 * to 30 s (an undocumented leeway); now it is refused from the second its `exp` names, unless
 * `TWINMILL_JWT_CLOCK_TOLERANCE` grants a documented tolerance. The probes that already held
 * (algorithm `none`, a wrong key, no `exp`, a forged role) stay in the suite.
 */
import assert from "node:assert/strict";
import { type JWTPayload, SignJWT } from "jose";
import { getJson, startNode } from "../harness/mod.ts";

const SECRET = "adversarial-jwt-secret-0123456789abcdef";
const now = () => Math.floor(Date.now() / 1000);
const sign = (claims: JWTPayload, secret = SECRET) =>
  new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(secret));
const b64url = (v: unknown) =>
  btoa(JSON.stringify(v)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");

async function call(url: string, token: string) {
  return await getJson(`${url}/v1/twins`, { headers: { authorization: `Bearer ${token}` } });
}

Deno.test("jwt: a token is refused from the second its exp names; valid ones pass", async () => {
  await using node = await startNode({ TWINMILL_JWT_SECRET: SECRET });
  const ok = await call(node.httpUrl, await sign({ sub: "a", role: "viewer", exp: now() + 60 }));
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  for (const ago of [1, 10, 29]) {
    const r = await call(node.httpUrl, await sign({ sub: "a", role: "viewer", exp: now() - ago }));
    assert.equal(r.status, 401, `expired ${ago} s ago: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.code, "unauthorized");
    assert.equal(r.body.error.message, "token expired");
  }
});

Deno.test("jwt: TWINMILL_JWT_CLOCK_TOLERANCE accepts that much skew and no more", async () => {
  await using node = await startNode({
    TWINMILL_JWT_SECRET: SECRET,
    TWINMILL_JWT_CLOCK_TOLERANCE: "30",
  });
  const late = await call(node.httpUrl, await sign({ sub: "a", role: "viewer", exp: now() - 10 }));
  assert.equal(late.status, 200, JSON.stringify(late.body));
  const old = await call(node.httpUrl, await sign({ sub: "a", role: "viewer", exp: now() - 60 }));
  assert.equal(old.status, 401);
});

Deno.test("jwt: alg none, a wrong key, no exp and a made-up role are refused (held before)", async () => {
  await using node = await startNode({ TWINMILL_JWT_SECRET: SECRET });
  const payload = { sub: "a", role: "admin", exp: now() + 60 };
  const cases: Array<[string, string]> = [
    [`${b64url({ alg: "none", typ: "JWT" })}.${b64url(payload)}.`, "none"],
    [await sign(payload, "another-secret-of-enough-length-0123456789"), "wrong key"],
    [await sign({ sub: "a", role: "admin" }), "no exp"],
    [await sign({ sub: "a", role: "root", exp: now() + 60 }), "made-up role"],
  ];
  for (const [token, what] of cases) {
    const r = await call(node.httpUrl, token);
    assert.equal(r.status, 401, `${what}: ${JSON.stringify(r.body)}`);
    assert.ok(!JSON.stringify(r.body).includes(token.split(".")[1]), `${what}: echoes the token`);
  }
});
