/**
 * mTLS means mTLS: with a client CA (`TWINMILL_TLS_CA`) the TLS listener requires a device
 * certificate and honours revocation even with device authentication off (the default on a
 * loopback bind); without a client CA, TLS is server-only and tokens log in over it. Devices
 * are the real `mosquitto_pub`, connecting to `localhost` as the README does.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { mosquittoPub, type PubResult, startNode, waitFor } from "../harness/mod.ts";
import { certificateSerial, issueCertificates } from "../harness/certs.ts";

/** A JSON request to the node's HTTPS API, trusting `client`'s CA. */
async function https(
  client: Deno.HttpClient,
  url: string,
  init: RequestInit = {},
  // deno-lint-ignore no-explicit-any
): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { ...init, client } as RequestInit);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** `mosquitto_pub` over TLS to localhost: one QoS 1 message, with `extra` options. */
function tlsPub(
  port: number | undefined,
  ca: string,
  topic: string,
  message: string,
  extra: string[] = [],
): Promise<PubResult> {
  assert.ok(port, "the node has a TLS listener");
  return mosquittoPub([
    "-h",
    "localhost",
    "-p",
    String(port),
    "--cafile",
    ca,
    "-q",
    "1",
    ...extra,
    "-t",
    topic,
    "-m",
    message,
  ]);
}

Deno.test("mtls: a client CA requires a certificate and honours revocation, device auth off", async () => {
  const dir = await Deno.makeTempDir({ prefix: "twinmill-mtls-" });
  const other = await Deno.makeTempDir({ prefix: "twinmill-mtls-other-" });
  try {
    await issueCertificates(dir, ["press-31", "press-32"]);
    await issueCertificates(other, ["press-31"]); // same CN, another CA
    await using node = await startNode({
      TWINMILL_TLS_CERT: `${dir}/server.pem`,
      TWINMILL_TLS_KEY: `${dir}/server.key`,
      TWINMILL_TLS_CA: `${dir}/ca.pem`,
    });
    const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(`${dir}/ca.pem`)] });
    const api = (path: string, init: RequestInit = {}) =>
      https(client, `${node.httpUrl}${path}`, init);
    const ready = await node.waitForLog((r) => r.msg === "ready");
    assert.ok(ready.http.startsWith("https://"), `the ready line's address: ${ready.http}`);
    const cert = (
      d: string,
      twin: string,
    ) => ["--cert", `${d}/${twin}.pem`, "--key", `${d}/${twin}.key`];
    const ca = `${dir}/ca.pem`;

    // no certificate: the handshake fails, nothing applied
    const bare = await tlsPub(node.mqttsPort, ca, "twins/press-31/telemetry", '{"temp":1}');
    assert.notEqual(bare.code, 0, "a client without a certificate is refused");
    // logged with the peer's address (it never got as far as a client id)
    await node.waitForLog((r) =>
      r.reason === "missing_client_certificate" && r.client === "tls:127.0.0.1"
    );
    // a certificate of another CA, naming the same twin: refused too
    const forged = await tlsPub(
      node.mqttsPort,
      ca,
      "twins/press-31/telemetry",
      '{"temp":2}',
      cert(other, "press-31"),
    );
    assert.notEqual(forged.code, 0, "a certificate of another CA is refused");
    assert.equal((await api("/v1/twins/press-31")).status, 404, "nothing applied");

    // a valid certificate: accepted and applied, as its own twin only
    const ok = await tlsPub(
      node.mqttsPort,
      ca,
      "twins/press-31/telemetry",
      '{"temp":21}',
      cert(dir, "press-31"),
    );
    assert.equal(ok.code, 0, ok.stderr);
    await waitFor(async () => (await api("/v1/twins/press-31")).body?.reported?.temp === 21, {
      message: "the message of a valid certificate is applied",
    });
    const spoof = await tlsPub(
      node.mqttsPort,
      ca,
      "twins/press-32/telemetry",
      '{"temp":99}',
      cert(dir, "press-31"),
    );
    assert.equal(spoof.code, 0, "acknowledged and dropped, as mosquitto does");
    assert.equal((await api("/v1/twins/press-32")).status, 404, "press-31 cannot act as press-32");

    // revocation: the connected session is dropped at once, the next connect refused
    const session = await mqtt.connectAsync(`mqtts://localhost:${node.mqttsPort}`, {
      ca: await Deno.readTextFile(ca),
      cert: await Deno.readTextFile(`${dir}/press-32.pem`),
      key: await Deno.readTextFile(`${dir}/press-32.key`),
      reconnectPeriod: 0,
    });
    const closed = new Promise<void>((r) => session.once("close", () => r()));
    await session.publishAsync("twins/press-32/telemetry", '{"temp":30}', { qos: 1 });
    await waitFor(async () => (await api("/v1/twins/press-32")).body?.version === 1);
    const rev = await api("/v1/revocations", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ serial: await certificateSerial(dir, "press-32") }),
    });
    assert.equal(rev.status, 201, JSON.stringify(rev.body));
    await closed;
    const revoked = await tlsPub(
      node.mqttsPort,
      ca,
      "twins/press-32/telemetry",
      '{"temp":31}',
      cert(dir, "press-32"),
    );
    assert.notEqual(revoked.code, 0, "a revoked certificate is refused");
    await node.waitForLog((r) => r.reason === "certificate_revoked");
    const t32 = await api("/v1/twins/press-32");
    assert.equal(t32.body.version, 1, "nothing applied after the revocation");
    assert.equal(t32.body.reported.temp, 30);

    // every refusal is counted by reason
    const metrics = await (await fetch(`${node.httpUrl}/metrics`, { client } as RequestInit))
      .text();
    for (const reason of ["missing_client_certificate", "certificate_revoked"]) {
      assert.match(
        metrics,
        new RegExp(`twinmill_mqtt_auth_failures_total\\{reason="${reason}"\\} [1-9]`),
      );
    }
    client.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(other, { recursive: true });
  }
});

Deno.test("mtls: without a client CA, TLS is server-only and a device logs in with its token", async () => {
  const dir = await Deno.makeTempDir({ prefix: "twinmill-tls-token-" });
  try {
    await issueCertificates(dir, []);
    await using node = await startNode({
      TWINMILL_MQTT_AUTH: "on",
      TWINMILL_TLS_CERT: `${dir}/server.pem`,
      TWINMILL_TLS_KEY: `${dir}/server.key`,
    });
    const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(`${dir}/ca.pem`)] });
    await https(client, `${node.httpUrl}/v1/twins/press-41`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: '{"attributes":{}}',
    });
    const cred = await https(client, `${node.httpUrl}/v1/twins/press-41/credentials`, {
      method: "POST",
    });
    assert.equal(cred.status, 201, JSON.stringify(cred.body));
    const ca = `${dir}/ca.pem`;
    const topic = "twins/press-41/telemetry";
    const login = ["-u", "press-41", "-P", cred.body.credentials.token];
    const ok = await tlsPub(node.mqttsPort, ca, topic, '{"temp":5}', login);
    assert.equal(ok.code, 0, ok.stderr);
    await waitFor(async () =>
      (await https(client, `${node.httpUrl}/v1/twins/press-41`)).body?.reported?.temp === 5
    );
    const anonymous = await tlsPub(node.mqttsPort, ca, topic, '{"temp":6}');
    assert.notEqual(anonymous.code, 0, "no token: refused");
    client.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
