import assert from "node:assert/strict";
import { silentLogger } from "../obs/log.ts";
import { createMetrics } from "../obs/metrics.ts";
import { InfluxWriter } from "./influx_writer.ts";
import {
  bySeries,
  FakeInflux,
  lineOf,
  point,
  range,
  setup,
  state,
  until,
  value,
} from "./influx_testing.ts";

Deno.test("InfluxWriter retries a 500 and resolves after the 204", async () => {
  await using srv = new FakeInflux();
  srv.handler = (_req, n) =>
    n === 1
      ? Response.json({ code: "internal error", message: "boom" }, { status: 500 })
      : new Response(null, { status: 204 });
  const { writer, metrics, logs } = setup(srv.url, { flushIntervalMs: 1 });
  await using _writer = writer;
  await writer.write(point(1));
  assert.equal(srv.writes.length, 2);
  assert.deepEqual(srv.writes[0].lines, srv.writes[1].lines);
  assert.deepEqual(srv.accepted, [lineOf(1)]);
  assert.equal(await value(metrics.influxRetries), 1);
  assert.equal(await value(metrics.influxWritten), 1);
  const warn = logs.find((l) => l.level === "warn");
  assert.equal(warn?.msg, "InfluxDB write failed, retrying");
  assert.equal(warn?.status, 500);
  assert.equal(warn?.reason, "boom");
  const info = logs.find((l) => l.msg === "InfluxDB reachable again");
  assert.equal(info?.pointsWaited, 1);
});

Deno.test("InfluxWriter honours a 429 and retries it", async () => {
  await using srv = new FakeInflux();
  srv.handler = (_req, n) =>
    n === 1
      ? new Response("slow down", { status: 429, headers: { "Retry-After": "0" } })
      : new Response(null, { status: 204 });
  const { writer, metrics } = setup(srv.url, { flushIntervalMs: 1 });
  await using _writer = writer;
  await writer.write(point(1));
  assert.equal(srv.writes.length, 2);
  assert.equal(await value(metrics.influxRetries), 1);
});

Deno.test("InfluxWriter resolves a 400 as failed, without retrying", async () => {
  await using srv = new FakeInflux();
  srv.handler = () =>
    Response.json({ code: "invalid", message: "unable to parse 'x'" }, { status: 400 });
  const { writer, metrics, logs } = setup(srv.url, { flushIntervalMs: 60_000 });
  await using _writer = writer;
  await Promise.all([writer.write(point(1)), writer.write(point(2)), writer.flush()]);
  assert.equal(srv.writes.length, 1);
  assert.equal(await value(metrics.influxFailed, { reason: "rejected" }), 2);
  assert.equal(await value(metrics.influxRetries), 0);
  assert.equal(await value(metrics.influxWritten), 0);
  const err = logs.find((l) => l.msg === "InfluxDB refused points");
  assert.equal(err?.status, 400);
  assert.equal(err?.message, "unable to parse 'x'");
  assert.equal(writer.buffered, 0);
});

Deno.test("InfluxWriter counts a partial write's dropped points only", async () => {
  await using srv = new FakeInflux();
  srv.handler = () =>
    Response.json({ error: "partial write: field type conflict: ... dropped=1" }, {
      status: 400,
    });
  // one batch per phase: no time-based flush (a loaded machine could split a 1 ms window)
  const { writer, metrics } = setup(srv.url, { api: "v1", flushIntervalMs: 60_000 });
  await using _writer = writer;
  const batch = (n: number) => {
    const ws = range(n).map((i) => writer.write(point(i)));
    return Promise.all([...ws, writer.flush()]);
  };
  await batch(3);
  assert.equal(await value(metrics.influxFailed, { reason: "rejected" }), 1);
  assert.equal(await value(metrics.influxWritten), 2);

  srv.handler = () =>
    Response.json({
      error: "partial write: unable to parse 'a': bad; unable to parse 'b': bad dropped=0",
    }, { status: 400 });
  await batch(5);
  assert.equal(await value(metrics.influxFailed, { reason: "rejected" }), 3);
  assert.equal(await value(metrics.influxWritten), 5);
});

Deno.test("InfluxWriter splits a batch the server finds too large (413)", async () => {
  await using srv = new FakeInflux();
  srv.handler = (req) =>
    new Response(null, {
      status: req.lines.length > 2 && req.path === "/api/v2/write" ? 413 : 204,
    });
  const { writer } = setup(srv.url, { batchSize: 5, flushIntervalMs: 60_000 });
  await using _writer = writer;
  await Promise.all(range(5).map((i) => writer.write(point(i))));
  assert.deepEqual(srv.accepted, range(5).map(lineOf));
});

Deno.test("InfluxWriter delivers every point, in order per series, after connection refused", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const { writer, metrics, logs } = setup(`http://127.0.0.1:${port}`, {
    batchSize: 7,
    flushIntervalMs: 1,
  });
  await using _writer = writer;
  const n = 50;
  const done = Promise.all(range(n).map((i) => writer.write(point(i))));
  await until(async () => (await value(metrics.influxRetries)) >= 3, "retries while down");
  assert.equal(writer.buffered, n);
  assert.equal(await value(metrics.influxBuffered), n);
  assert.equal(await state(done), "pending");

  await using srv = new FakeInflux(port);
  await done;
  // exactly once; in queue order per series (the backlog went out spread over the lanes)
  assert.equal(srv.accepted.length, n);
  assert.deepEqual(bySeries(srv.accepted), bySeries(range(n).map(lineOf)));
  assert.equal(writer.buffered, 0);
  assert.equal(await value(metrics.influxWritten), n);
  const warns = logs.filter((l) => l.level === "warn");
  assert.equal(warns.length, 1, "retry warnings are rate-limited");
  const info = logs.find((l) => l.msg === "InfluxDB reachable again");
  assert.equal(info?.pointsWaited, n);
  assert.equal(typeof info?.downMs, "number");
});

Deno.test("InfluxWriter v1 creates the database, and again after 404 database not found", async () => {
  await using srv = new FakeInflux();
  let dropped = false;
  srv.handler = (req) => {
    if (req.path === "/write" && !dropped) {
      dropped = true;
      return Response.json({ error: 'database not found: "my db"' }, { status: 404 });
    }
    return req.path === "/query"
      ? Response.json({ results: [{}] })
      : new Response(null, { status: 204 });
  };
  const { writer, metrics } = setup(srv.url, { api: "v1", db: "my db", flushIntervalMs: 1 });
  await using _writer = writer;
  await until(() => srv.reqs.length === 1, "database creation at start");
  const create = srv.reqs[0];
  assert.equal(create.method, "POST");
  assert.equal(create.path, "/query");
  assert.equal(create.params.get("q"), 'CREATE DATABASE "my db"');
  assert.equal(create.headers.get("authorization"), null);

  await writer.write(point(1));
  assert.deepEqual(srv.reqs.map((r) => r.path), ["/query", "/write", "/query", "/write"]);
  const write = srv.writes[1];
  assert.equal(write.params.get("db"), "my db");
  assert.equal(write.params.get("precision"), "ns");
  assert.equal(await value(metrics.influxRetries), 1);
  assert.deepEqual(srv.accepted, [lineOf(1)]);
});

Deno.test("InfluxWriter v1 does not throw when InfluxDB is down at start", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const { writer, logs } = setup(`http://127.0.0.1:${port}`, { api: "v1" });
  await until(() => logs.some((l) => l.level === "warn"), "the unreachable warning");
  assert.equal(logs[0].msg, "InfluxDB unreachable, will retry later");
  await using srv = new FakeInflux(port);
  await writer.write(point(1)); // creates the database first, then writes
  assert.deepEqual(srv.reqs.map((r) => r.path), ["/query", "/write"]);
  await writer.close();
});

Deno.test("InfluxWriter v2 sends Authorization, org and bucket; never logs the token", async () => {
  await using srv = new FakeInflux();
  srv.handler = (_req, n) =>
    n === 1 ? new Response("down", { status: 503 }) : new Response(null, { status: 204 });
  const token = "s3cr3t-t0ken";
  const { writer, logs } = setup(srv.url + "/", {
    token,
    org: "acme corp",
    bucket: "tele&metry",
    flushIntervalMs: 1,
  });
  await using _writer = writer;
  await writer.write(point(1));
  const req = srv.writes[1];
  assert.equal(req.method, "POST");
  assert.equal(req.path, "/api/v2/write");
  assert.equal(req.headers.get("authorization"), `Token ${token}`);
  assert.equal(req.params.get("org"), "acme corp");
  assert.equal(req.params.get("bucket"), "tele&metry");
  assert.equal(req.params.get("precision"), "ns");
  assert.ok(logs.length > 0);
  assert.ok(!JSON.stringify(logs).includes(token));
});

Deno.test("InfluxWriter retries a request that times out", async () => {
  await using srv = new FakeInflux();
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  srv.handler = async (_req, n) => {
    if (n === 1) await gate;
    return new Response(null, { status: 204 });
  };
  const { writer, metrics, logs } = setup(srv.url, { flushIntervalMs: 1, timeoutMs: 50 });
  await using _writer = writer;
  // released whatever write() does: a gated request left open would hang the server's shutdown
  try {
    await writer.write(point(1));
  } finally {
    release();
  }
  // at least the timed-out request was retried (a loaded machine may time out a retry too)
  assert.ok(await value(metrics.influxRetries) >= 1);
  assert.match(String(logs.find((l) => l.level === "warn")?.reason), /timeout after 50 ms/);
});

Deno.test("InfluxWriter retries 401/403/404 (configuration problems) instead of dropping points", async () => {
  let calls = 0;
  const statuses = [401, 403, 404];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    await req.text();
    const s = statuses[calls++];
    return s
      ? Response.json({ message: "no" }, { status: s })
      : new Response(null, { status: 204 });
  });
  const metrics = createMetrics();
  const w = new InfluxWriter({
    url: `http://127.0.0.1:${server.addr.port}`,
    api: "v2",
    bucket: "b",
    org: "o",
    token: "t",
    minBackoffMs: 1,
    maxBackoffMs: 5,
    flushIntervalMs: 1,
    logger: silentLogger,
    metrics,
  });
  await w.write({ measurement: "telemetry", tags: { device: "a" }, fields: { temp: 1 }, ts: 1 });
  assert.equal(calls, 4);
  assert.equal((await metrics.influxWritten.get()).values[0].value, 1);
  assert.equal((await metrics.influxFailed.get()).values.length, 0);
  await w.close();
  await server.shutdown();
});
