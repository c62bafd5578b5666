/**
 * InfluxDB over HTTPS with a private CA: a real influxd 1.6 serving TLS (`https-enabled`,
 * certificates issued in the test with openssl), the node trusting it through `INFLUX_CA`, the
 * token from `INFLUX_TOKEN_FILE`. Telemetry is written and history reads it back; without
 * `INFLUX_CA` nothing is written and the reason names the certificate; the token appears in no
 * output.
 */
import assert from "node:assert/strict";
import {
  connectDevice,
  getJson,
  startInfluxd,
  startNode,
  waitForInfluxCount,
} from "../harness/mod.ts";
import { issueCertificates } from "../harness/certs.ts";

const TOKEN = "influx-tok-7Qz9";

Deno.test("influx over HTTPS: INFLUX_CA trusts a private CA, INFLUX_TOKEN_FILE, no token in output", async () => {
  const dir = await Deno.makeTempDir({ prefix: "influx-tls-" });
  try {
    await issueCertificates(dir, []);
    await using influx = await startInfluxd({
      tls: { cert: `${dir}/server.pem`, key: `${dir}/server.key`, ca: `${dir}/ca.pem` },
    });
    assert.match(influx.url, /^https:\/\//);
    await Deno.writeTextFile(`${dir}/token`, `${TOKEN}\n`);
    const db = "tls";
    const env = { INFLUX_URL: influx.url, INFLUX_API: "v1", INFLUX_DB: db };
    await using node = await startNode({
      ...env,
      INFLUX_CA: `${dir}/ca.pem`,
      INFLUX_TOKEN_FILE: `${dir}/token`,
    });
    const id = "press-tls.1";
    const ts = Math.floor(Date.now() / 1000) * 1000 - 60_000;
    {
      await using dev = await connectDevice(node, "dev-tls-1");
      for (let i = 0; i < 5; i++) {
        await dev.publish(`twins/${id}/telemetry`, { temp: i + 0.5, ts: ts + i * 1000 });
      }
    }
    await waitForInfluxCount(influx, db, id, 5);
    const q = new URLSearchParams({
      field: "temp",
      from: new Date(ts).toISOString(),
      to: new Date(ts + 4000).toISOString(),
    });
    const hist = await getJson(`${node.httpUrl}/v1/twins/${id}/history?${q}`);
    assert.equal(hist.status, 200, JSON.stringify(hist.body));
    assert.deepEqual(hist.body.points.map((p: { value: number }) => p.value), [
      0.5,
      1.5,
      2.5,
      3.5,
      4.5,
    ]);

    // the system's roots do not know the test CA: nothing written, the reason says why
    await using plain = await startNode({ ...env, INFLUX_TOKEN: TOKEN });
    {
      await using dev = await connectDevice(plain, "dev-tls-2");
      await dev.publish(`twins/press-tls.2/telemetry`, { temp: 1 });
    }
    const warned = await plain.waitForLog(
      (r) => r.mod?.includes("influx") && /certificate|UnknownIssuer/i.test(JSON.stringify(r)),
      20_000,
    );
    assert.ok(warned);
    const h2 = await getJson(`${plain.httpUrl}/v1/twins/press-tls.1/history?${q}`);
    assert.equal(h2.status, 502, JSON.stringify(h2.body));

    const metrics = await (await fetch(`${node.httpUrl}/metrics`)).text();
    for (const out of [node.logs.join("\n"), plain.logs.join("\n"), metrics]) {
      assert.ok(!out.includes(TOKEN), "the InfluxDB token is never written out");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
