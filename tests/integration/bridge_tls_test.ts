/**
 * The bridge over TLS to a real mosquitto 2: `mqtts://` with a CA, a client certificate and
 * key, and a username/password; a wrong password is refused by the broker, retried, and never
 * logged.
 */
import assert from "node:assert/strict";
import {
  freePort,
  metric,
  mosquittoPub,
  startMosquitto,
  startNode,
  waitFor,
} from "../harness/mod.ts";
import { issueCertificates } from "../harness/certs.ts";

Deno.test("bridge over mqtts: CA, client certificate and key, username and password; a wrong password is refused, retried, never logged", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bridge-tls-" });
  try {
    await issueCertificates(dir, ["bridge"]);
    const pw = await new Deno.Command("mosquitto_passwd", {
      args: ["-b", "-c", `${dir}/passwd`, "plant-user", "plant-secret"],
    }).output();
    assert.ok(pw.success, new TextDecoder().decode(pw.stderr));
    // mosquitto started as root reads these as its own user
    await Deno.chmod(dir, 0o755);
    for await (const f of Deno.readDir(dir)) await Deno.chmod(`${dir}/${f.name}`, 0o644);
    const tlsPort = await freePort();
    await using broker = await startMosquitto({
      config: [
        `password_file ${dir}/passwd`,
        `listener ${tlsPort} 127.0.0.1`,
        `cafile ${dir}/ca.pem`,
        `certfile ${dir}/server.pem`,
        `keyfile ${dir}/server.key`,
        "require_certificate true",
      ],
    });
    const env = {
      TWINMILL_MQTT_URL: `mqtts://127.0.0.1:${tlsPort}`,
      TWINMILL_MQTT_CA: `${dir}/ca.pem`,
      TWINMILL_MQTT_CERT: `${dir}/bridge.pem`,
      TWINMILL_MQTT_KEY: `${dir}/bridge.key`,
      TWINMILL_MQTT_USERNAME: "plant-user",
      TWINMILL_MQTT_PORT: "off",
    };
    await using node = await startNode({ ...env, TWINMILL_MQTT_PASSWORD: "plant-secret" });
    await node.waitForLog((r) => r.msg === "bridge subscribed", 15_000);
    // a device on the broker's plain listener
    const pub = await mosquittoPub([
      "-p",
      String(broker.port),
      "-u",
      "plant-user",
      "-P",
      "plant-secret",
      "-q",
      "1",
      "-t",
      "twins/tls-1/telemetry",
      "-m",
      '{"temp":1}',
    ]);
    assert.equal(pub.code, 0, pub.stderr);
    await waitFor(async () => {
      const r = await fetch(`${node.httpUrl}/v1/twins/tls-1`);
      return r.status === 200 && (await r.json()).version === 1;
    }, { message: "the message came over the TLS bridge" });

    await using wrong = await startNode({ ...env, TWINMILL_MQTT_PASSWORD: "not-the-secret" });
    await wrong.waitForLog((r) => r.msg === "bridge cannot connect to the broker; retrying");
    assert.equal(await metric(wrong, "twinmill_bridge_connected"), 0);
    assert.ok(!wrong.logs.some((l) => l.includes("not-the-secret")), "password never logged");
    assert.ok(!node.logs.some((l) => l.includes("plant-secret")), "password never logged");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
