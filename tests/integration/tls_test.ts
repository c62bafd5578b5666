/**
 * TLS and mTLS, with certificates issued by `openssl` (X.509 v3): a device authenticates by
 * its certificate alone (CN = twin id), a revoked certificate is refused and its device
 * disconnected, a token alone does not pass an mTLS listener, HTTPS serves the API, and SIGHUP
 * reloads the server certificate without a restart. (mTLS with device authentication off, with
 * the real mosquitto_pub: mtls_test.ts.)
 */
import assert from "node:assert/strict";
import tls from "node:tls";
import mqtt from "mqtt";
import { startNode, waitFor, within } from "../harness/mod.ts";
import { normSerial } from "../../src/security/device_auth.ts";
import { certificateSerial, issueCertificates, openssl } from "../harness/certs.ts";

Deno.test("tls: mTLS devices, revocation, tokens over TLS, HTTPS, SIGHUP reload", async () => {
  const dir = await Deno.makeTempDir({ prefix: "twinmill-tls-" });
  try {
    await issueCertificates(dir, ["press-9", "press-10"]);
    await using node = await startNode({
      TWINMILL_MQTT_AUTH: "on",
      TWINMILL_TLS_CERT: `${dir}/server.pem`,
      TWINMILL_TLS_KEY: `${dir}/server.key`,
      TWINMILL_TLS_CA: `${dir}/ca.pem`,
    });
    assert.ok(node.httpUrl.startsWith("https://"));
    const ca = await Deno.readTextFile(`${dir}/ca.pem`);
    const client = Deno.createHttpClient({ caCerts: [ca] });
    const https = async (path: string, init: RequestInit = {}) => {
      const r = await fetch(`${node.httpUrl}${path}`, { ...init, client });
      return { status: r.status, body: r.status === 204 ? null : await r.json() };
    };
    assert.equal((await https("/healthz")).status, 200);
    const url = `mqtts://127.0.0.1:${node.mqttsPort}`;
    const files = async (name: string) => ({
      ca,
      cert: await Deno.readTextFile(`${dir}/${name}.pem`),
      key: await Deno.readTextFile(`${dir}/${name}.key`),
    });

    // a device with its certificate: no token
    const dev9 = await mqtt.connectAsync(url, { ...await files("press-9"), reconnectPeriod: 0 });
    await dev9.publishAsync("twins/press-9/telemetry", '{"temp":20}', { qos: 1 });
    await waitFor(async () => (await https("/v1/twins/press-9")).body?.version === 1);
    // its certificate names press-9: it cannot act as press-10
    await dev9.publishAsync("twins/press-10/telemetry", '{"temp":99}', { qos: 1 });
    assert.equal((await https("/v1/twins/press-10")).status, 404);
    await dev9.endAsync();
    // a large message right after connecting is acknowledged over TLS too
    const big = JSON.stringify({ blob: "x".repeat(40 * 1024) });
    for (let i = 0; i < 20; i++) {
      const c = await mqtt.connectAsync(url, { ...await files("press-9"), reconnectPeriod: 0 });
      await within(
        c.publishAsync("twins/press-9/telemetry", big, { qos: 1 }),
        10_000,
        `no PUBACK for large message ${i}`,
      );
      await c.endAsync(true);
    }
    await waitFor(async () => (await https("/v1/twins/press-9")).body?.version === 21);
    await assert.rejects(
      mqtt.connectAsync(url, {
        ...await files("press-9"),
        username: "press-10",
        password: "x",
        reconnectPeriod: 0,
      }),
      /Bad username or password/,
    );

    // revocation: the connected device is dropped, the next connect refused
    const dev10 = await mqtt.connectAsync(url, { ...await files("press-10"), reconnectPeriod: 0 });
    const closed = new Promise<void>((r) => dev10.once("close", () => r()));
    const s10 = await certificateSerial(dir, "press-10");
    const rev = await https("/v1/revocations", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ serial: s10 }),
    });
    assert.equal(rev.status, 201, JSON.stringify(rev.body));
    await closed;
    await assert.rejects(
      mqtt.connectAsync(url, { ...await files("press-10"), reconnectPeriod: 0 }),
      /Bad username or password/,
    );
    // the refusal is logged (the line may reach us after the client's rejection)
    await node.waitForLog((r) => r.reason === "certificate_revoked");

    // with a client CA the listener is mTLS: a valid token without a certificate fails the
    // handshake (tokens over TLS need a listener without TWINMILL_TLS_CA: mtls_test.ts)
    await https("/v1/twins/press-11", {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: '{"attributes":{}}',
    });
    const cred = await https("/v1/twins/press-11/credentials", { method: "POST" });
    const tokenOnly = mqtt.connect(url, {
      ca,
      username: "press-11",
      password: cred.body.credentials.token,
      reconnectPeriod: 0,
    });
    // TLS 1.3: the client may see its handshake done and only then the server's alert, which
    // can close the connection without an 'error'
    const outcome = await new Promise<string>((resolve) => {
      tokenOnly.once("connect", () => resolve("connected"));
      tokenOnly.once("error", () => resolve("refused"));
      tokenOnly.once("close", () => resolve("refused"));
    });
    tokenOnly.end(true);
    assert.equal(outcome, "refused");
    await node.waitForLog((r) => r.reason === "missing_client_certificate");

    // SIGHUP: a new server certificate for new connections, no restart
    const before = await peerSerial(node.mqttsPort!, ca);
    await issueCertificates(dir, [], "server");
    Deno.kill(node.pid, "SIGHUP");
    await waitFor(async () => (await peerSerial(node.mqttsPort!, ca)) !== before, {
      message: "the new certificate is served",
    });
    // serials compare without leading zeros (openssl prints them, node:tls does not)
    assert.equal(
      normSerial(await peerSerial(node.mqttsPort!, ca)),
      normSerial(await certificateSerial(dir, "server")),
    );
    // HTTPS too, and the API still answers
    await waitFor(
      async () =>
        normSerial(await peerSerial(node.httpPort, ca)) ===
          normSerial(await certificateSerial(dir, "server")),
      { message: "HTTPS serves the new certificate" },
    );
    const again = Deno.createHttpClient({ caCerts: [ca] });
    const health = await fetch(`${node.httpUrl}/healthz`, { client: again });
    assert.equal(health.status, 200);
    await health.body?.cancel();
    again.close();
    client.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Serial of the certificate the TLS listener presents now. */
function peerSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port, ca }, () => {
      const serial = s.getPeerCertificate().serialNumber.toUpperCase();
      s.end();
      resolve(serial);
    });
    s.once("error", reject);
  });
}

Deno.test("tls: a CRL file revokes a device certificate; its signature must verify", async () => {
  const dir = await Deno.makeTempDir({ prefix: "twinmill-crl-" });
  try {
    await issueCertificates(dir, ["press-20", "press-21"]);
    await Deno.writeTextFile(`${dir}/index.txt`, "");
    await Deno.writeTextFile(`${dir}/crlnumber`, "1000\n");
    await Deno.writeTextFile(
      `${dir}/ca.cnf`,
      "[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\ncrlnumber=crlnumber\ndefault_md=sha256\n" +
        "default_crl_days=30\n",
    );
    const ca = ["-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.pem"];
    await openssl(dir, "ca", ...ca, "-revoke", "press-21.pem");
    await openssl(dir, "ca", ...ca, "-gencrl", "-out", "crl.pem");
    await using node = await startNode({
      TWINMILL_MQTT_AUTH: "on",
      TWINMILL_TLS_CERT: `${dir}/server.pem`,
      TWINMILL_TLS_KEY: `${dir}/server.key`,
      TWINMILL_TLS_CA: `${dir}/ca.pem`,
      TWINMILL_TLS_REVOKED: `${dir}/crl.pem`,
    });
    const caPem = await Deno.readTextFile(`${dir}/ca.pem`);
    const url = `mqtts://127.0.0.1:${node.mqttsPort}`;
    const opts = async (name: string) => ({
      ca: caPem,
      cert: await Deno.readTextFile(`${dir}/${name}.pem`),
      key: await Deno.readTextFile(`${dir}/${name}.key`),
      reconnectPeriod: 0,
    });
    const ok = await mqtt.connectAsync(url, await opts("press-20"));
    await ok.endAsync();
    await assert.rejects(mqtt.connectAsync(url, await opts("press-21")), /Bad username/);
    assert.ok(node.logs.some((l) => l.includes('"revoked client certificates loaded"')));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
