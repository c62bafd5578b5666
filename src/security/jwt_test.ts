import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { exportJWK, exportSPKI, generateKeyPair, type JWTPayload, SignJWT } from "jose";
import { UnauthorizedError } from "../errors.ts";
import { createJwtVerifier, type JwtVerifier } from "./jwt.ts";

const SECRET = "s".repeat(32);
const now = () => Math.floor(Date.now() / 1000);

async function sign(
  payload: JWTPayload,
  key: Parameters<SignJWT["sign"]>[0] | Awaited<ReturnType<typeof generateKeyPair>>["privateKey"],
  alg = "HS256",
  header: Record<string, unknown> = {},
): Promise<string> {
  return await new SignJWT(payload).setProtectedHeader({ ...header, alg }).sign(
    key as Parameters<SignJWT["sign"]>[0],
  );
}

function b64url(value: unknown): string {
  return btoa(JSON.stringify(value)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const hsKey = new TextEncoder().encode(SECRET);
const claims = (extra: JWTPayload = {}): JWTPayload => ({
  sub: "alice",
  role: "operator",
  exp: now() + 300,
  ...extra,
});

/** Expects a 401 whose message matches `reason` and never contains the token or its parts. */
async function refused(v: JwtVerifier, token: string, reason: RegExp): Promise<void> {
  const err = await v.verify(token).then(
    (p) => assert.fail(`accepted: ${JSON.stringify(p)}`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof UnauthorizedError, `not UnauthorizedError: ${err}`);
  assert.equal(err.status, 401);
  assert.equal(err.code, "unauthorized");
  assert.match(err.message, reason);
  assert.equal(err.cause, undefined);
  const text = `${err.message} ${err.stack ?? ""}`;
  if (token !== "") assert.ok(!text.includes(token), "message contains the token");
  for (const part of token.split(".")) {
    if (part.length >= 8) assert.ok(!text.includes(part), "message contains part of the token");
  }
}

async function tempJwks(keys: unknown[]): Promise<string> {
  const path = await Deno.makeTempFile({ suffix: ".json" });
  await Deno.writeTextFile(path, JSON.stringify({ keys }));
  return path;
}

Deno.test("jwt: valid HS256 token gives a principal with role, sites and sub", async () => {
  const v = await createJwtVerifier({ secret: SECRET });
  const token = await sign(claims({ sites: ["plant-a", "plant-b"] }), hsKey);
  assert.deepEqual(await v.verify(token), {
    id: "jwt:alice",
    role: "operator",
    sites: ["plant-a", "plant-b"],
    via: "jwt",
  });
});

Deno.test("jwt: no sub gives jwt:anonymous; no sites omits sites", async () => {
  const v = await createJwtVerifier({ secret: SECRET });
  const p = await v.verify(await sign({ role: "viewer", exp: now() + 60 }, hsKey));
  assert.deepEqual(p, { id: "jwt:anonymous", role: "viewer", via: "jwt" });
  assert.ok(!("sites" in p));
});

Deno.test("jwt: valid RS256 and ES256 tokens against SPKI PEM keys", async () => {
  for (const alg of ["RS256", "ES256"]) {
    const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
    const v = await createJwtVerifier({ publicKeyPem: await exportSPKI(publicKey) });
    const p = await v.verify(await sign(claims({ role: "admin" }), privateKey, alg));
    assert.deepEqual(p, { id: "jwt:alice", role: "admin", via: "jwt" }, alg);
  }
});

Deno.test("jwt: JWKS file selects the key by kid; without kid tries every match", async () => {
  const rs = await generateKeyPair("RS256", { extractable: true });
  const rs2 = await generateKeyPair("RS256", { extractable: true });
  const es = await generateKeyPair("ES256", { extractable: true });
  const path = await tempJwks([
    { ...await exportJWK(rs.publicKey), kid: "rs" },
    { ...await exportJWK(rs2.publicKey), kid: "rs2" },
    { ...await exportJWK(es.publicKey), kid: "es" },
  ]);
  try {
    const v = await createJwtVerifier({ jwksPath: path, issuer: "idp", audience: "twinmill" });
    const base = claims({ iss: "idp", aud: "twinmill" });
    for (const [key, alg, kid] of [[rs, "RS256", "rs"], [es, "ES256", "es"]] as const) {
      const p = await v.verify(await sign(base, key.privateKey, alg, { kid }));
      assert.equal(p.id, "jwt:alice");
    }
    // No kid: two RSA keys match the header; the second one signed it.
    assert.equal((await v.verify(await sign(base, rs2.privateKey, "RS256"))).role, "operator");
    // Signed by a key that is not in the file.
    const other = await generateKeyPair("RS256");
    await refused(v, await sign(base, other.privateKey, "RS256"), /signature is invalid/);
    await refused(
      v,
      await sign(base, other.privateKey, "RS256", { kid: "nope" }),
      /signing key is unknown/,
    );
    // Right key id, wrong key.
    await refused(
      v,
      await sign(base, other.privateKey, "RS256", { kid: "rs" }),
      /signature is invalid/,
    );
    // HS256 is never allowed with a JWKS, even signed with a key's public JSON as secret.
    await refused(v, await sign(base, hsKey), /algorithm is not allowed/);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("jwt: an expired token is refused from its exp second; no leeway by default", async () => {
  const v = await createJwtVerifier({ secret: SECRET });
  await refused(v, await sign(claims({ exp: now() - 120 }), hsKey), /^token expired$/);
  await refused(v, await sign(claims({ exp: now() - 1 }), hsKey), /^token expired$/);
  await refused(v, await sign(claims({ exp: now() }), hsKey), /^token expired$/);
  assert.equal((await v.verify(await sign(claims({ exp: now() + 2 }), hsKey))).role, "operator");
});

Deno.test("jwt: a configured clock tolerance accepts a token that much past exp, no more", async () => {
  const v = await createJwtVerifier({ secret: SECRET, clockToleranceSec: 30 });
  assert.equal((await v.verify(await sign(claims({ exp: now() - 10 }), hsKey))).role, "operator");
  await refused(v, await sign(claims({ exp: now() - 60 }), hsKey), /^token expired$/);
});

Deno.test("jwt: nbf in the future is refused; within a configured tolerance is accepted", async () => {
  const strict = await createJwtVerifier({ secret: SECRET });
  await refused(strict, await sign(claims({ nbf: now() + 10 }), hsKey), /^token not yet valid$/);
  const v = await createJwtVerifier({ secret: SECRET, clockToleranceSec: 30 });
  await refused(v, await sign(claims({ nbf: now() + 120 }), hsKey), /^token not yet valid$/);
  assert.equal((await v.verify(await sign(claims({ nbf: now() + 10 }), hsKey))).role, "operator");
});

Deno.test("jwt: missing exp is refused", async () => {
  const v = await createJwtVerifier({ secret: SECRET });
  await refused(v, await sign({ sub: "alice", role: "admin" }, hsKey), /^token has no expiry$/);
  await refused(v, await sign(claims({ exp: "never" as unknown as number }), hsKey), /expiry/);
});

Deno.test("jwt: wrong secret (forged token) is refused", async () => {
  const v = await createJwtVerifier({ secret: SECRET });
  const forged = await sign(claims({ role: "admin" }), new TextEncoder().encode("x".repeat(32)));
  await refused(v, forged, /^token signature is invalid$/);
  // Payload swapped under a valid signature.
  const [h, , s] = (await sign(claims(), hsKey)).split(".");
  await refused(v, `${h}.${b64url(claims({ role: "admin" }))}.${s}`, /signature is invalid/);
});

Deno.test("jwt: alg none is refused by every verifier", async () => {
  const none = `${b64url({ alg: "none", typ: "JWT" })}.${b64url(claims({ role: "admin" }))}.`;
  const { publicKey } = await generateKeyPair("ES256", { extractable: true });
  const jwks = await tempJwks([await exportJWK(publicKey)]);
  try {
    for (
      const opts of [{ secret: SECRET }, { publicKeyPem: await exportSPKI(publicKey) }, {
        jwksPath: jwks,
      }]
    ) {
      await refused(await createJwtVerifier(opts), none, /^token algorithm is not allowed$/);
    }
    const v = await createJwtVerifier({ secret: SECRET });
    const noneUpper = `${b64url({ alg: "None" })}.${b64url(claims())}.`;
    await refused(v, noneUpper, /algorithm is not allowed/);
  } finally {
    await Deno.remove(jwks);
  }
});

Deno.test("jwt: algorithm confusion is refused", async () => {
  const rs = await generateKeyPair("RS256", { extractable: true });
  const es = await generateKeyPair("ES256", { extractable: true });
  const pem = await exportSPKI(rs.publicKey);
  // RS256 token against an HS256 verifier.
  const hs = await createJwtVerifier({ secret: SECRET });
  await refused(
    hs,
    await sign(claims(), rs.privateKey, "RS256"),
    /^token algorithm is not allowed$/,
  );
  // HS256 token MACed with the public PEM against the RS256 verifier (classic key confusion).
  const rsv = await createJwtVerifier({ publicKeyPem: pem });
  const confused = await sign(claims({ role: "admin" }), new TextEncoder().encode(pem));
  await refused(rsv, confused, /^token algorithm is not allowed$/);
  // ES256 token against the RS256 key, and HS512 against HS256.
  await refused(rsv, await sign(claims(), es.privateKey, "ES256"), /algorithm is not allowed/);
  await refused(hs, await sign(claims(), hsKey, "HS512"), /algorithm is not allowed/);
});

Deno.test("jwt: missing or bad role is refused", async () => {
  const v = await createJwtVerifier({ secret: SECRET });
  await refused(v, await sign({ sub: "a", exp: now() + 60 }, hsKey), /^token has no valid role$/);
  for (const role of ["root", "Admin", "", 1, ["admin"], null]) {
    await refused(v, await sign(claims({ role }), hsKey), /^token has no valid role$/);
  }
});

Deno.test("jwt: bad sites are refused", async () => {
  const v = await createJwtVerifier({ secret: SECRET });
  for (const sites of ["plant-a", [""], ["ok", 1], [null], {}, null]) {
    await refused(v, await sign(claims({ sites }), hsKey), /sites must be an array/);
  }
  assert.deepEqual((await v.verify(await sign(claims({ sites: [] }), hsKey))).sites, []);
});

Deno.test("jwt: bad sub is refused", async () => {
  const v = await createJwtVerifier({ secret: SECRET });
  for (const sub of ["", 42]) {
    await refused(v, await sign(claims({ sub: sub as string }), hsKey), /subject is invalid/);
  }
});

Deno.test("jwt: issuer and audience are enforced when configured", async () => {
  const v = await createJwtVerifier({ secret: SECRET, issuer: "idp", audience: "twinmill" });
  const ok = claims({ iss: "idp", aud: ["other", "twinmill"] });
  assert.equal((await v.verify(await sign(ok, hsKey))).id, "jwt:alice");
  await refused(v, await sign({ ...ok, iss: "evil" }, hsKey), /^token issuer is not accepted$/);
  await refused(v, await sign({ ...ok, iss: undefined }, hsKey), /issuer is not accepted/);
  await refused(v, await sign({ ...ok, aud: "other" }, hsKey), /^token audience is not accepted$/);
  await refused(v, await sign({ ...ok, aud: undefined }, hsKey), /audience is not accepted/);
});

Deno.test("jwt: malformed tokens are refused", async () => {
  const v = await createJwtVerifier({ secret: SECRET });
  for (const token of ["", "abc", "a.b.c", "a.b", `${b64url({ alg: "HS256" })}.!!!.x`]) {
    await refused(v, token, /^token is malformed$/);
  }
  // A well-formed header with a non-object payload and no signature fails on the signature.
  await refused(v, `${b64url({ alg: "HS256" })}.${b64url([1])}.`, /^token signature is invalid$/);
});

Deno.test("jwt: error messages never contain the token", async () => {
  // Secret-looking claim values must not leak either.
  const v = await createJwtVerifier({ secret: SECRET, issuer: "idp", audience: "aud" });
  const marker = "LEAKMARKER1234567890";
  const tokens = [
    await sign(claims({ iss: marker, aud: "aud" }), hsKey),
    await sign(claims({ iss: "idp", aud: marker }), hsKey),
    await sign(claims({ iss: "idp", aud: "aud", role: marker }), hsKey),
    await sign(claims({ iss: "idp", aud: "aud", sites: [marker, ""] }), hsKey),
    await sign(claims({ iss: "idp", aud: "aud", exp: now() - 100, sub: marker }), hsKey),
    `${b64url({ alg: "none", kid: marker })}.${b64url(claims({ sub: marker }))}.`,
    `${marker}.${marker}.${marker}`,
  ];
  for (const token of tokens) {
    const err = await v.verify(token).catch((e: Error) => e);
    assert.ok(err instanceof UnauthorizedError);
    assert.ok(!err.message.includes(token));
    assert.ok(!err.message.includes(marker), err.message);
  }
});

Deno.test("jwt: creation refuses unusable options", async () => {
  const rejects = (opts: Parameters<typeof createJwtVerifier>[0], re: RegExp) =>
    assert.rejects(createJwtVerifier(opts), (e: Error) => {
      assert.ok(!(e instanceof UnauthorizedError));
      assert.match(e.message, re);
      return true;
    });
  const { publicKey } = await generateKeyPair("ES256", { extractable: true });
  const pem = await exportSPKI(publicKey);
  await rejects({}, /exactly one of secret, publicKeyPem, jwksPath \(got 0\)/);
  await rejects({ secret: SECRET, publicKeyPem: pem }, /exactly one.*got 2/);
  await rejects({ secret: "short" }, /at least 32 bytes/);
  await rejects({ secret: "" }, /at least 32 bytes/);
  await rejects({ secret: SECRET, clockToleranceSec: -1 }, /clockToleranceSec/);
  await rejects({ secret: SECRET, clockToleranceSec: NaN }, /clockToleranceSec/);
  await rejects({ publicKeyPem: "not a pem" }, /not an RSA or P-256/);
  const p384 = await generateKeyPair("ES384", { extractable: true });
  await rejects({ publicKeyPem: await exportSPKI(p384.publicKey) }, /not an RSA or P-256/);
  const ed = await generateKeyPair("EdDSA", { extractable: true });
  await rejects({ publicKeyPem: await exportSPKI(ed.publicKey) }, /not an RSA or P-256/);
  const weak = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey;
  await rejects(
    { publicKeyPem: weak.export({ type: "spki", format: "pem" }) as string },
    /at least 2048 bits/,
  );
  await rejects({ jwksPath: "/nonexistent/jwks.json" }, /JWKS file .* is unusable/);
  const bad = await Deno.makeTempFile();
  const priv = await generateKeyPair("ES256", { extractable: true });
  try {
    await Deno.writeTextFile(bad, "{not json");
    await rejects({ jwksPath: bad }, /unusable/);
    await Deno.writeTextFile(bad, JSON.stringify({ nokeys: [] }));
    await rejects({ jwksPath: bad }, /unusable/);
    await Deno.writeTextFile(bad, JSON.stringify({ keys: [await exportJWK(priv.privateKey)] }));
    await rejects({ jwksPath: bad }, /private or secret keys/);
    await Deno.writeTextFile(bad, JSON.stringify({ keys: [await exportJWK(hsKey)] }));
    await rejects({ jwksPath: bad }, /private or secret keys/);
    await Deno.writeTextFile(bad, JSON.stringify({ keys: [await exportJWK(p384.publicKey)] }));
    await rejects({ jwksPath: bad }, /no RSA .* or P-256 key/);
  } finally {
    await Deno.remove(bad);
  }
});
