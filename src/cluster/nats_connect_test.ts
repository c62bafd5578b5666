import assert from "node:assert/strict";
import { type Authenticator, AuthorizationError, nkeys } from "@nats-io/transport-node";
import { NatsRefusedError, natsSecurity, refusalOf } from "./nats_connect.ts";

const AT = "tls://127.0.0.1:4222";
const userPass = { authSettings: "NATS_USER and NATS_PASSWORD", clientCert: true, privateCa: true };
const anon = { authSettings: "", clientCert: false, privateCa: false };
const coded = (message: string, code: string) => Object.assign(new Error(message), { code });

Deno.test("refusalOf: each refusal names what to check; a server not up yet is no refusal", () => {
  const cases: Array<[unknown, typeof userPass, RegExp]> = [
    [new AuthorizationError("Authorization Violation"), userPass, /credentials.*NATS_USER/],
    [new AuthorizationError("Authorization Violation"), anon, /requires authentication/],
    [
      coded("unable to verify the first certificate", "UNABLE_TO_VERIFY_LEAF_SIGNATURE"),
      userPass,
      /does not trust.*check NATS_CA/,
    ],
    [coded("self-signed certificate", "DEPTH_ZERO_SELF_SIGNED_CERT"), anon, /set NATS_CA/],
    [
      coded("received fatal alert: BadCertificate", "ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE"),
      anon,
      /requires a client certificate/,
    ],
    [
      coded("received fatal alert: BadCertificate", "ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE"),
      userPass,
      /does not accept the client certificate/,
    ],
    [new Error("server does not support 'tls'"), anon, /does not offer TLS/],
  ];
  for (const [err, sec, want] of cases) {
    const r = refusalOf(err, AT, sec);
    assert.ok(r instanceof NatsRefusedError, String(err));
    assert.equal(r.code, "nats_refused");
    assert.match(r.message, want);
    assert.ok(r.message.startsWith(`NATS at ${AT} `), r.message);
    assert.equal(r.message.includes("\n"), false);
  }
  for (const err of [coded("connection refused", "ECONNREFUSED"), new Error("timeout")]) {
    assert.equal(refusalOf(err, AT, userPass), undefined);
  }
});

Deno.test("natsSecurity: the options of each method; TLS files swapped on reload", async () => {
  const seed = new TextDecoder().decode(nkeys.createUser().getSeed());
  assert.deepEqual(
    (await natsSecurity({ auth: { method: "user", user: "u", password: "p" }, insecure: false }))
      .options,
    { user: "u", pass: "p" },
  );
  assert.deepEqual(
    (await natsSecurity({ auth: { method: "token", token: "t" }, insecure: false })).options,
    { token: "t" },
  );
  const nk = await natsSecurity({ auth: { method: "nkey", seed }, insecure: false });
  // what the client answers the server's nonce with
  const kp = nkeys.fromSeed(new TextEncoder().encode(seed));
  const signed = (nk.options.authenticator as Authenticator)("nonce-1") as {
    nkey: string;
    sig: string;
  };
  assert.equal(signed.nkey, kp.getPublicKey());
  const jwt = "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJzdWIiOiJVIn0.c2ln";
  const creds = `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n` +
    `************************* IMPORTANT *************************\n\n` +
    `-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`;
  const cr = await natsSecurity({
    auth: { method: "creds", file: "node.creds", creds },
    insecure: false,
  });
  const answer = (cr.options.authenticator as Authenticator)("nonce-2") as {
    jwt: string;
    nkey: string;
  };
  assert.equal(answer.jwt, jwt);
  assert.equal(answer.nkey, kp.getPublicKey());
  assert.equal(cr.authSettings, "NATS_CREDS");
  assert.equal(typeof nk.options.authenticator, "function");
  assert.equal(nk.authSettings, "NATS_NKEY");
  const dir = await Deno.makeTempDir();
  try {
    const pem = (s: string) => `-----BEGIN CERTIFICATE-----\n${s}\n-----END CERTIFICATE-----\n`;
    await Deno.writeTextFile(`${dir}/ca.pem`, pem("one"));
    const sec = await natsSecurity({
      auth: { method: "none" },
      tls: { caFile: `${dir}/ca.pem` },
      insecure: false,
    });
    const tls = sec.options.tls as { ca?: string; maxVersion?: string };
    assert.equal(tls.ca, pem("one"));
    assert.equal(tls.maxVersion, "TLSv1.2");
    await Deno.writeTextFile(`${dir}/ca.pem`, pem("two"));
    assert.equal(await sec.reload(), true);
    // the same object: nats.js reads it on its next (re)connect
    assert.equal(tls.ca, pem("two"));
    await Deno.writeTextFile(`${dir}/ca.pem`, "not a certificate");
    await assert.rejects(sec.reload(), /NATS_CA: file .* holds no PEM block/);
    assert.equal(tls.ca, pem("two"));
    await assert.rejects(
      natsSecurity({
        auth: { method: "none" },
        tls: { caFile: `${dir}/none.pem` },
        insecure: false,
      }),
      (e) => e instanceof NatsRefusedError && /NATS_CA: cannot read file/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
