import assert from "node:assert/strict";
import { TwinHost } from "./twin_host.ts";
import { memoryPersistence } from "../persistence/memory.ts";
import { memoryTransport } from "../transport/memory.ts";
import { settle, systemClock } from "./clock.ts";
import { silentLogger } from "../obs/log.ts";
import { createMetrics } from "../obs/metrics.ts";
import type { Accepted } from "../bridges/ingest.ts";
import type { Persistence } from "../persistence/port.ts";
import { subjects } from "../transport/subjects.ts";

const enc = new TextEncoder();

/** A point sink whose writes complete only when the test says so. */
function manualSink() {
  const pending: Array<{ p: unknown; done(): void }> = [];
  return {
    pending,
    full: false,
    write(p: unknown) {
      return new Promise<void>((done) => pending.push({ p, done }));
    },
    release() {
      for (const w of pending.splice(0)) w.done();
    },
  };
}

function telemetry(seq: number, twin: string, fields: Record<string, number>): Accepted {
  const topic = `twins/${twin}/telemetry`;
  return {
    entry: { seq, topic, payload: enc.encode(JSON.stringify(fields)), at: 1000 + seq },
    topic: { twin, kind: "telemetry" },
    body: { kind: "telemetry", fields },
  };
}

function host(persistence: Persistence, points?: ReturnType<typeof manualSink>, maxPending = 100) {
  const transport = memoryTransport();
  return {
    transport,
    host: new TwinHost({
      persistence,
      transport,
      clock: systemClock,
      logger: silentLogger,
      metrics: createMetrics(),
      points,
      maxPending,
      flushDelayMs: 1,
    }),
  };
}

async function logSeqs(p: Persistence): Promise<number[]> {
  const out: number[] = [];
  for await (const e of p.log.replay()) out.push(e.seq);
  return out;
}

Deno.test("a log entry is retired only when its twin is persisted AND its point is written", async () => {
  const p = memoryPersistence();
  const sink = manualSink();
  const { host: h } = host(p, sink);
  const batch = [telemetry(1, "a", { t: 1 }), telemetry(2, "b", { t: 2 })];
  await p.log.append(batch.map((a) => a.entry));
  h.dispatch(batch);
  await h.flush();
  await settle();
  assert.equal((await p.snapshots.load("a"))?.state.version, 1); // snapshot persisted
  assert.deepEqual(await logSeqs(p), [1, 2]); // but points not written yet
  assert.equal(h.pending, 2);
  sink.release();
  await settle();
  await h.flush();
  assert.deepEqual(await logSeqs(p), []);
  assert.equal(h.pending, 0);
  await h.close();
});

Deno.test("backpressure: too many unretired entries or a full point sink -> canAccept() false", async () => {
  const p = memoryPersistence();
  const sink = manualSink();
  const { host: h } = host(p, sink, 3);
  h.dispatch([1, 2, 3].map((i) => telemetry(i, "a", { t: i })));
  await settle();
  assert.equal(h.canAccept(), false);
  sink.release();
  await settle();
  await h.flush();
  assert.equal(h.canAccept(), true);
  sink.full = true;
  assert.equal(h.canAccept(), false);
  await h.close();
});

Deno.test("replay after a crash: exact versions, duplicates not re-applied but their points re-written", async () => {
  const p = memoryPersistence();
  const batch = [1, 2, 3, 4].map((i) => telemetry(i, "a", { t: i }));
  await p.log.append(batch.map((a) => a.entry));
  // "crash" state: the snapshot includes seq 1-2 whose points never got written: the log holds 1-4
  {
    const { host: h1 } = host(p, manualSink());
    h1.dispatch(batch.slice(0, 2));
    await settle();
    await h1.flush();
  }
  const sink = manualSink();
  const { host: h2, transport } = host(p, sink);
  const events: unknown[] = [];
  using _s = transport.subscribe(subjects.eventsOf("*", "*"), (m) => events.push(m.data));
  assert.equal(await h2.replay(), 4);
  await settle();
  assert.equal((await h2.get("a"))?.version, 4);
  assert.equal(sink.pending.length, 4); // points of all 4 entries written (1-2 again)
  assert.equal(events.length, 2); // events only for newly applied 3-4
  sink.release();
  await settle();
  await h2.flush();
  assert.deepEqual(await logSeqs(p), []);
  await h2.close();
});

Deno.test("HTTP changes are durable when they return; passivated twins are read from the snapshot", async () => {
  const p = memoryPersistence();
  const { host: h } = host(p);
  await h.putAttributes("x", { site: "A" });
  const s = await h.patchDesired("x", { speed: 3 });
  assert.equal(s.version, 2);
  assert.deepEqual((await p.snapshots.load("x"))?.state.desired, { speed: 3 }); // no flush needed
  await h.close(); // passivates everything
  assert.equal(h.resident, 0);
  const { host: h2 } = host(p);
  assert.deepEqual((await h2.get("x"))?.attributes, { site: "A" });
  assert.equal(await h2.get("nope"), null);
  await h2.close();
});

Deno.test("fencing: twins this node may no longer persist are neither committed nor retired", async () => {
  const p = memoryPersistence();
  let owned = true;
  const transport = memoryTransport();
  const h = new TwinHost({
    persistence: p,
    transport,
    clock: systemClock,
    logger: silentLogger,
    metrics: createMetrics(),
    flushDelayMs: 1,
    mayPersist: () => owned,
  });
  const batch = [telemetry(1, "a", { t: 1 }), telemetry(2, "a", { t: 2 })];
  await p.log.append(batch.map((x) => x.entry));
  h.dispatch(batch.slice(0, 1));
  await settle();
  await h.flush();
  assert.equal((await p.snapshots.load("a"))?.state.version, 1);
  owned = false; // lease lost
  h.dispatch(batch.slice(1));
  await settle();
  await h.flush();
  assert.equal((await p.snapshots.load("a"))?.state.version, 1); // stale write fenced
  assert.deepEqual(await logSeqs(p), [2]); // left for the next owner
  assert.equal(await h.discard((id) => id === "a"), 1);
  assert.equal(h.resident, 0);
  await h.close();
});

Deno.test("fencing: a change whose shard is fenced before its commit is not acknowledged", async () => {
  const p = memoryPersistence();
  let owned = true;
  const h = new TwinHost({
    persistence: p,
    transport: memoryTransport(),
    clock: systemClock,
    logger: silentLogger,
    metrics: createMetrics(),
    flushDelayMs: 1,
    mayPersist: () => owned,
  });
  await h.putAttributes("b", { x: 1 });
  owned = false; // the lease is lost while the next change waits for its commit
  await assert.rejects(h.putAttributes("b", { x: 2 }), /Twin "b" moved to another node/);
  assert.deepEqual((await p.snapshots.load("b"))?.state.attributes, { x: 1 });
  await h.close();
});

Deno.test("backpressure: whenAccepting() resolves once entries retire, or the point sink has space", async () => {
  const p = memoryPersistence();
  const sink = manualSink();
  const { host: h } = host(p, sink, 3);
  h.dispatch([1, 2, 3].map((i) => telemetry(i, "a", { t: i })));
  await settle();
  let accepting = false;
  const waiting = h.whenAccepting().then(() => (accepting = true));
  await settle();
  assert.equal(accepting, false);
  sink.release(); // the points are written: the entries retire
  await waiting;
  assert.equal(h.canAccept(), true);

  let space!: () => void;
  const full = Object.assign(manualSink(), {
    full: true,
    whenSpace: () => new Promise<void>((r) => (space = r)),
  });
  const { host: h2 } = host(memoryPersistence(), full);
  accepting = false;
  const waiting2 = h2.whenAccepting().then(() => (accepting = true));
  await settle();
  assert.equal(accepting, false);
  full.full = false;
  space();
  await waiting2;
  await h.close();
  await h2.close();
});
