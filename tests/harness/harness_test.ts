import assert from "node:assert/strict";
import mqtt from "mqtt";
import {
  canConnect,
  findBinary,
  freePort,
  mosquittoPub,
  startInfluxd,
  startMosquitto,
  startNats,
  startNatsCluster,
  startVictoriaMetrics,
  waitFor,
} from "./mod.ts";

Deno.test("waitFor returns the first truthy value and retries throws", async () => {
  let calls = 0;
  const value = await waitFor(() => {
    calls++;
    if (calls === 1) throw new Error("not yet");
    return calls >= 3 ? "done" : false;
  }, { intervalMs: 1 });
  assert.equal(value, "done");
  assert.equal(calls, 3);
});

Deno.test("waitFor throws its message on the deadline", async () => {
  await assert.rejects(
    waitFor(() => {
      throw new Error("still down");
    }, { timeoutMs: 30, intervalMs: 5, message: "server up" }),
    /^Error: server up \(timed out after 30 ms\): still down$/,
  );
});

Deno.test("freePort returns a port that can be bound", async () => {
  const port = await freePort();
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  listener.close();
});

Deno.test("findBinary names the package to install when a binary is missing", () => {
  assert.throws(
    () => findBinary("no-such-binary-twinmill", "no-such-pkg"),
    {
      message:
        "no-such-binary-twinmill not found: run tests/ensure_servers.sh (apt-get install no-such-pkg)",
    },
  );
});

Deno.test("mosquitto delivers a mosquitto_pub message to an mqtt.js subscriber", async () => {
  await using broker = await startMosquitto();
  assert.equal(broker.url, `mqtt://127.0.0.1:${broker.port}`);
  const client = await mqtt.connectAsync(broker.url, { reconnectPeriod: 0 });
  try {
    const got: string[] = [];
    client.on("message", (topic, payload) => got.push(`${topic} ${payload}`));
    await client.subscribeAsync("devices/+/telemetry", { qos: 1 });
    const pub = await mosquittoPub([
      "-h",
      "127.0.0.1",
      "-p",
      String(broker.port),
      "-q",
      "1",
      "-t",
      "devices/d1/telemetry",
      "-s",
    ], '{"temp":21.5}');
    assert.equal(pub.code, 0, pub.stderr);
    await waitFor(() => got.length > 0, { message: "message from mosquitto_pub" });
    assert.deepEqual(got, ['devices/d1/telemetry {"temp":21.5}']);
  } finally {
    await client.endAsync();
  }
});

Deno.test("influxd writes and queries a point", async () => {
  await using influx = await startInfluxd();
  assert.equal(influx.url, `http://127.0.0.1:${influx.port}`);
  await influx.query("CREATE DATABASE twins");
  const res = await fetch(`${influx.url}/write?db=twins&precision=ms`, {
    method: "POST",
    body: "telemetry,device=d1 temp=21.5 1700000000000",
  });
  assert.equal(res.status, 204, await res.text());
  const body = await influx.query(
    'SELECT "temp" FROM "telemetry" WHERE "device" = \'d1\'',
    "twins",
  );
  assert.deepEqual(body.results[0].series[0].values, [["2023-11-14T22:13:20Z", 21.5]]);
});

Deno.test("influxd keeps its data and port across stop() and start()", async () => {
  await using influx = await startInfluxd();
  await influx.query("CREATE DATABASE twins");
  await influx.write("telemetry,device=d1 temp=1 1\ntelemetry,device=d2 temp=2 2", "twins", "s");
  await influx.stop();
  await assert.rejects(fetch(`${influx.url}/ping`));
  await influx.start();
  const body = await influx.query('SELECT count("temp") FROM "telemetry"', "twins");
  assert.equal(body.results[0].series[0].values[0][1], 2);
});

Deno.test("victoria-metrics ingests InfluxDB v2 line protocol", async () => {
  await using vm = await startVictoriaMetrics();
  const ts = Date.now();
  const res = await fetch(`${vm.url}/api/v2/write?org=x&bucket=y&precision=ms`, {
    method: "POST",
    body: `telemetry,device=d1 temp=21.5 ${ts}\n`,
  });
  assert.equal(res.status, 204, await res.text());
  // force_flush alone does not make a sample readable at once (VM 1.79 needs ~1 s more)
  const exported = await waitFor(async () => {
    await vm.flush();
    return (await vm.exportSeries('telemetry_temp{device="d1"}')).trim();
  }, { message: "telemetry_temp exported" });
  const lines = exported.split("\n");
  assert.equal(lines.length, 1);
  assert.deepEqual(JSON.parse(lines[0]), {
    metric: { __name__: "telemetry_temp", device: "d1" },
    values: [21.5],
    timestamps: [ts],
  });
  // an instant query may lag the export by a few hundred ms (VM's search caches)
  const result = await waitFor(async () => {
    const q = await vm.query('telemetry_temp{device="d1"}');
    assert.equal(q.status, "success");
    return q.data.result[0];
  }, { message: "telemetry_temp queryable" });
  assert.equal(result.value[1], "21.5");
});

Deno.test("nats-server accepts a client and sends INFO", async () => {
  await using nats = await startNats();
  assert.equal(nats.url, `nats://127.0.0.1:${nats.port}`);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: nats.port });
  try {
    const buf = new Uint8Array(4096);
    const n = await conn.read(buf);
    assert.ok(n !== null);
    assert.match(new TextDecoder().decode(buf.subarray(0, n)), /^INFO \{/);
  } finally {
    conn.close();
  }
});

Deno.test("nats-server: a deferred server starts later; stop() and start() keep its port", async () => {
  await using nats = await startNats({ jetstream: true, deferred: true });
  assert.equal(await canConnect(nats.port), false, "nothing listens before start()");
  await nats.start();
  assert.equal(await canConnect(nats.port), true);
  await nats.stop();
  assert.equal(await canConnect(nats.port), false);
  await nats.start();
  assert.equal(await canConnect(nats.port), true);
  assert.equal((await (await fetch(`${nats.monitorUrl}/healthz`)).json()).status, "ok");
});

Deno.test("3-node nats cluster has a JetStream meta leader and survives a restart", async () => {
  await using cluster = await startNatsCluster(3);
  assert.deepEqual(cluster.servers.map((s) => s.name), ["n1", "n2", "n3"]);
  assert.equal(cluster.urls, cluster.servers.map((s) => s.url).join(","));
  for (const s of cluster.servers) {
    const jsz = await (await fetch(`${s.monitorUrl}/jsz`)).json();
    assert.ok(jsz.meta_cluster.leader, `${s.name} knows the meta leader`);
    assert.equal(jsz.meta_cluster.cluster_size, 3);
  }
  const [n1] = cluster.servers;
  await n1.stop();
  await n1.start();
  const health = await (await fetch(`${n1.monitorUrl}/healthz`)).json();
  assert.equal(health.status, "ok");
});
