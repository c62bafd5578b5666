import assert from "node:assert/strict";
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

Deno.test("InfluxWriter batches by size", async () => {
  await using srv = new FakeInflux();
  const { writer, metrics } = setup(srv.url, { batchSize: 3, flushIntervalMs: 60_000 });
  await using _writer = writer;
  await Promise.all(range(6).map((i) => writer.write(point(i))));
  assert.deepEqual(srv.writes.map((r) => r.lines.length), [3, 3]);
  assert.deepEqual(srv.accepted, range(6).map(lineOf));
  assert.equal(writer.buffered, 0);
  assert.equal(await value(metrics.influxWritten), 6);
  assert.equal(await value(metrics.influxBuffered), 0);
  assert.ok((await metrics.influxLatency.get()).values.some((v) => v.value === 2));
});

Deno.test("InfluxWriter batches by time", async () => {
  await using srv = new FakeInflux();
  const { writer } = setup(srv.url, { batchSize: 1000, flushIntervalMs: 40 });
  await using _writer = writer;
  const t0 = Date.now();
  await Promise.all(range(3).map((i) => writer.write(point(i))));
  assert.ok(Date.now() - t0 >= 35, `sent after ${Date.now() - t0} ms, before the interval`);
  assert.equal(srv.writes.length, 1);
  assert.deepEqual(srv.accepted, range(3).map(lineOf));
});

Deno.test("InfluxWriter flush() sends a partial batch at once", async () => {
  await using srv = new FakeInflux();
  const { writer } = setup(srv.url, { batchSize: 1000, flushIntervalMs: 60_000 });
  await using _writer = writer;
  const written = Promise.all(range(2).map((i) => writer.write(point(i))));
  await writer.flush();
  assert.equal(await state(written), "resolved");
  assert.equal(srv.writes.length, 1);
  await writer.flush(); // nothing queued: resolves at once
});

Deno.test("InfluxWriter resolves a point without fields at once and counts it", async () => {
  await using srv = new FakeInflux();
  const { writer, metrics } = setup(srv.url);
  await using _writer = writer;
  await writer.write({ measurement: "telemetry", tags: {}, fields: { t: NaN }, ts: 1 });
  assert.equal(await value(metrics.influxFailed, { reason: "no_fields" }), 1);
  assert.equal(writer.buffered, 0);
  assert.equal(srv.reqs.length, 0);
});

Deno.test("InfluxWriter full/whenSpace give backpressure with a tiny maxBuffer", async () => {
  await using srv = new FakeInflux();
  let release = srv.hold();
  const { writer, metrics, logs } = setup(srv.url, {
    maxBuffer: 3,
    batchSize: 2,
    flushIntervalMs: 1,
  });
  await using _writer = writer;
  const w = [writer.write(point(0)), writer.write(point(1))];
  assert.equal(writer.full, false);
  await writer.whenSpace(); // not full: at once
  w.push(writer.write(point(2)));
  assert.equal(writer.full, true);
  assert.equal(writer.buffered, 3);
  w.push(writer.write(point(3))); // ignoring backpressure is allowed: never dropped
  assert.equal(await value(metrics.influxOverflow), 1, "counted once per edge, not per point");
  assert.equal(logs.filter((l) => l.msg === "InfluxDB buffer full, holding back ingest").length, 1);
  const space = writer.whenSpace();
  await until(() => srv.reqs.length === 1, "first request in flight");
  assert.equal(await state(space), "pending");

  release(); // first batch (2 points) written: 2 left < 3
  await space;
  assert.equal(writer.full, false);
  await Promise.all(w);

  release = srv.hold();
  const more = range(3).map((i) => writer.write(point(10 + i)));
  assert.equal(writer.full, true);
  assert.equal(await value(metrics.influxOverflow), 2);
  release();
  await Promise.all(more);
  // exactly once, in order per series (a backlog of two batches may go out spread)
  assert.equal(srv.accepted.length, 7);
  assert.deepEqual(bySeries(srv.accepted), bySeries([...range(4), 10, 11, 12].map(lineOf)));
});

Deno.test("InfluxWriter close() clears timers and leaves pending points unwritten", async () => {
  await using srv = new FakeInflux();
  const { writer } = setup(srv.url, { flushIntervalMs: 60_000 });
  const p = writer.write(point(1)); // arms the 60 s timer
  await writer.close();
  assert.equal(writer.buffered, 1);
  assert.equal(await state(p), "pending");
  assert.equal(srv.reqs.length, 0);
  await writer.flush(); // closed: does not hang
  await writer.close(); // idempotent
});

Deno.test("InfluxWriter close() stops retrying at once", async () => {
  await using srv = new FakeInflux();
  srv.handler = () => new Response("no", { status: 500 });
  const { writer, metrics } = setup(srv.url, {
    flushIntervalMs: 1,
    minBackoffMs: 60_000,
    maxBackoffMs: 60_000,
  });
  const p = writer.write(point(1));
  await until(async () => (await value(metrics.influxRetries)) === 1, "a retry");
  const t0 = Date.now();
  await writer.close();
  assert.ok(Date.now() - t0 < 1000);
  assert.equal(writer.buffered, 1);
  assert.equal(await state(p), "pending");
});

Deno.test("InfluxWriter close(timeoutMs) aborts a request that hangs", async () => {
  await using srv = new FakeInflux();
  const release = srv.hold();
  const { writer, metrics } = setup(srv.url, { flushIntervalMs: 1 });
  const p = writer.write(point(1));
  await until(() => srv.reqs.length === 1, "request in flight");
  await writer.close(20);
  assert.equal(writer.buffered, 1);
  assert.equal(await state(p), "pending");
  assert.equal(await value(metrics.influxRetries), 0);
  release();
});

Deno.test("InfluxWriter sends by time a partial batch queued while a flush was waiting", async () => {
  await using srv = new FakeInflux();
  const release = srv.hold();
  const { writer } = setup(srv.url, { batchSize: 1000, flushIntervalMs: 20 });
  await using _writer = writer;
  writer.write(point(0));
  const flushed = writer.flush();
  await until(() => srv.writes.length === 1, "the flushed batch in flight");
  const later = writer.write(point(1)); // a new partial batch, queued while flushing
  release();
  await flushed;
  await later; // sent once its interval passed, though the flush that was waiting is over
  assert.deepEqual(srv.accepted, [0, 1].map(lineOf));
});

Deno.test("InfluxWriter sends a lone point that became due while it was being queued", async () => {
  // The clock moves on between the writer's "is the batch due?" and "arm its timer": found not
  // due, then past due, the batch must still get its timer (it once waited for the next write).
  await using srv = new FakeInflux();
  const { writer } = setup(srv.url, { flushIntervalMs: 2 });
  await using _writer = writer;
  const realNow = Date.now;
  let t = realNow();
  Date.now = () => t++; // each reading 1 ms later than the one before
  let p: Promise<void>;
  try {
    p = writer.write(point(1));
  } finally {
    Date.now = realNow;
  }
  await until(() => srv.accepted.length === 1, "the point written");
  assert.equal(await state(p), "resolved");
  assert.deepEqual(srv.accepted, [lineOf(1)]);
});
