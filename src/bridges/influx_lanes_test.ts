import assert from "node:assert/strict";
import type { Point } from "./line_protocol.ts";
import { bySeries, FakeInflux, type Req, setup, state, until, value } from "./influx_testing.ts";

/** Point `i` of `series` devices; `v` = its temp (default `i`), at 1 ms per round of devices. */
const pt = (i: number, series: number, v = i): Point => ({
  measurement: "telemetry",
  tags: { device: `s${i % series}` },
  fields: { temp: v },
  ts: 1_700_000_000_000 + Math.floor(i / series),
});
/** A handler that holds every write until `open()`, counting writes in flight. */
function gated() {
  let inFlight = 0;
  let peak = 0;
  let gate = Promise.withResolvers<void>();
  return {
    get inFlight() {
      return inFlight;
    },
    get peak() {
      return peak;
    },
    open: () => gate.resolve(),
    close: () => gate = Promise.withResolvers<void>(),
    handler: async (_req: Req) => {
      peak = Math.max(peak, ++inFlight);
      await gate.promise;
      inFlight--;
      return new Response(null, { status: 204 });
    },
  };
}

Deno.test("InfluxWriter sends a backlog at most maxInFlight requests at a time, one per series", async () => {
  await using srv = new FakeInflux();
  const g = gated();
  srv.handler = g.handler;
  const { writer, metrics } = setup(srv.url, {
    batchSize: 10,
    flushIntervalMs: 60_000,
    maxInFlight: 3,
  });
  await using _writer = writer;
  const n = 200;
  const first = writer.write(pt(0, 40));
  const rest = Array.from({ length: n - 1 }, (_, i) => writer.write(pt(i + 1, 40)));
  await until(() => srv.writes.length === 1, "the first batch, whole");
  assert.equal(srv.writes[0].lines.length, 10);
  g.open(); // the first batch written; the backlog goes out spread
  await first;
  g.close();
  await until(() => g.inFlight === 3, "three requests in flight");
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(g.inFlight, 3, "never more than maxInFlight");
  assert.equal(writer.buffered, n - 10, "in-flight points count as buffered");
  g.open();
  await Promise.all(rest);
  assert.equal(g.peak, 3);
  assert.equal(writer.buffered, 0);
  assert.equal(await value(metrics.influxWritten), n);
  assert.equal(await value(metrics.influxBuffered), 0);
  // no series in two requests in flight together, and each series in queue order
  const want = Array.from({ length: n }, (_, i) => pt(i, 40)).map((p) =>
    `telemetry,device=${p.tags.device} temp=${p.fields.temp} ${p.ts}000000`
  );
  assert.deepEqual(bySeries(srv.accepted), bySeries(want));
  assert.ok(srv.writes.length > n / 10, "parts of batches (per lane), not whole batches");
});

Deno.test("InfluxWriter retries the one failed part of several in flight; its batch's promise waits for it", async () => {
  await using srv = new FakeInflux();
  let failures = 0;
  const gate = Promise.withResolvers<void>();
  srv.handler = async (req, n) => {
    // the first batch goes whole; then the parts of the one lane with series s7 fail
    if (n > 1 && req.lines.some((l) => l.startsWith("telemetry,device=s7 "))) {
      if (failures++ < 2) return new Response("overloaded", { status: 503 });
      await gate.promise; // the retried part hangs until released
    }
    return new Response(null, { status: 204 });
  };
  const { writer, metrics } = setup(srv.url, {
    batchSize: 20,
    flushIntervalMs: 60_000,
    maxInFlight: 4,
  });
  await using _writer = writer;
  try {
    // a backlog of 4 batches behind the first, spread over the 4 lanes
    const promises = Array.from({ length: 100 }, (_, i) => writer.write(pt(i, 20)));
    await until(() => failures === 3, "the part with s7 retried twice, then in flight");
    await until(async () => (await value(metrics.influxWritten)) >= 40, "other parts written");
    assert.equal(await state(promises.at(-1)!), "pending", "its batches wait for that part");
    assert.ok(writer.buffered > 0 && writer.buffered < 80, `${writer.buffered} buffered`);
    gate.resolve();
    await Promise.all(promises);
  } finally {
    gate.resolve();
  }
  assert.equal(await value(metrics.influxRetries), 2);
  assert.equal(await value(metrics.influxWritten), 100);
  assert.equal(srv.accepted.length, 100, "each point exactly once");
  const s7 = bySeries(srv.accepted).get("telemetry,device=s7")!;
  assert.deepEqual(s7.map((l) => l.split(" ")[1]), [7, 27, 47, 67, 87].map((v) => `temp=${v}`));
});

Deno.test("InfluxWriter keeps the last write of a series and timestamp last, spread or not", async () => {
  await using srv = new FakeInflux();
  const g = gated();
  srv.handler = g.handler;
  const { writer } = setup(srv.url, { batchSize: 8, flushIntervalMs: 60_000, maxInFlight: 4 });
  await using _writer = writer;
  // 10 writes of each of 8 series at one timestamp: versions 0..9, in queue order
  const all: Promise<void>[] = [];
  for (let v = 0; v < 10; v++) {
    for (let s = 0; s < 8; s++) {
      all.push(writer.write({ ...pt(s, 8, v), ts: 1_700_000_000_000 }));
    }
  }
  g.open();
  await Promise.all(all);
  assert.ok(srv.writes.length > 10, "spread over the lanes");
  for (const [series, lines] of bySeries(srv.accepted)) {
    assert.deepEqual(
      lines.map((l) => l.split(" ")[1]),
      Array.from({ length: 10 }, (_, v) => `temp=${v}`),
      `${series}: written in queue order`,
    );
  }
});

Deno.test("InfluxWriter with maxInFlight 1 sends whole batches in queue order", async () => {
  await using srv = new FakeInflux();
  const g = gated();
  srv.handler = g.handler;
  const { writer } = setup(srv.url, { batchSize: 5, flushIntervalMs: 60_000, maxInFlight: 1 });
  await using _writer = writer;
  const all = Array.from({ length: 23 }, (_, i) => writer.write(pt(i, 7)));
  const flushed = writer.flush(); // the last 3 at once
  g.open();
  await flushed;
  await Promise.all(all);
  assert.equal(g.peak, 1);
  assert.deepEqual(srv.writes.map((r) => r.lines.length), [5, 5, 5, 5, 3]);
  assert.deepEqual(
    srv.accepted,
    Array.from({ length: 23 }, (_, i) => pt(i, 7)).map((p) =>
      `telemetry,device=${p.tags.device} temp=${p.fields.temp} ${p.ts}000000`
    ),
  );
});

Deno.test("InfluxWriter flush() waits for every part in flight", async () => {
  await using srv = new FakeInflux();
  const g = gated();
  srv.handler = g.handler;
  const { writer } = setup(srv.url, { batchSize: 10, flushIntervalMs: 60_000 });
  await using _writer = writer;
  for (let i = 0; i < 95; i++) writer.write(pt(i, 50));
  const flushed = writer.flush();
  await until(() => g.inFlight >= 1, "a request in flight");
  assert.equal(await state(flushed), "pending");
  g.open();
  await flushed;
  assert.equal(writer.buffered, 0);
  assert.equal(srv.accepted.length, 95);
});
