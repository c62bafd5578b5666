/**
 * Containment in the twin host: a twin whose snapshot cannot be stored is quarantined while
 * the rest of the node goes on; a store that fails for everyone is retried with backoff and
 * nothing is dropped; an effect that throws leaves the change standing; the size limit refuses
 * changes that would make a twin too large, over HTTP and from devices alike.
 */
import assert from "node:assert/strict";
import { TwinHost, type TwinHostOptions } from "./twin_host.ts";
import { memoryPersistence } from "../persistence/memory.ts";
import { memoryTransport } from "../transport/memory.ts";
import { type Clock, systemClock } from "./clock.ts";
import { silentLogger } from "../obs/log.ts";
import { createMetrics, type Metrics } from "../obs/metrics.ts";
import type { Accepted } from "../bridges/ingest.ts";
import type { Persistence } from "../persistence/port.ts";
import type { TwinRecord } from "../../actors/twin.ts";
import { TwinmillError } from "../errors.ts";
import { subjects } from "../transport/subjects.ts";

const enc = new TextEncoder();

/** A memory store whose `saveMany` throws what `fail` returns for a batch (if anything). */
function failingStore(fail: (records: TwinRecord[]) => Error | null) {
  const p = memoryPersistence();
  let calls = 0;
  const persistence: Persistence = {
    ...p,
    snapshots: {
      ...p.snapshots,
      saveMany(records) {
        calls++;
        const err = fail(records);
        return err ? Promise.reject(err) : p.snapshots.saveMany(records);
      },
    },
  };
  return { persistence, calls: () => calls };
}

function makeHost(persistence: Persistence, extra: Partial<TwinHostOptions> = {}) {
  const metrics = createMetrics();
  const host = new TwinHost({
    persistence,
    transport: memoryTransport(),
    clock: systemClock,
    logger: silentLogger,
    metrics,
    flushDelayMs: 1,
    ...extra,
  });
  return { host, metrics };
}

/** The real clock, `skew` ms ahead (a test moves time past a deadline without waiting). */
function skewedClock(): { skew: number; clock: Clock } {
  const c: { skew: number; clock: Clock } = {
    skew: 0,
    clock: { ...systemClock, now: () => Date.now() + c.skew },
  };
  return c;
}

/**
 * The real clock, except that waits of 100 ms or more (the store's retry backoff) are held
 * until the test releases them.
 */
function heldBackoffClock() {
  const held: Array<{ ms: number; fn: () => void; cancelled?: boolean }> = [];
  const clock: Clock = {
    ...systemClock,
    setTimeout(fn, ms) {
      if (ms < 100) return setTimeout(fn, ms);
      held.push({ ms, fn });
      return -held.length;
    },
    clear(id) {
      if (typeof id === "number" && id < 0) held[-id - 1].cancelled = true;
      else clearTimeout(id as number);
    },
  };
  return {
    clock,
    /** The delays waited so far, in order. */
    delays: () => held.map((h) => h.ms),
    /** Fire every held wait. */
    release() {
      for (const h of held) {
        if (!h.cancelled) h.fn();
        h.cancelled = true;
      }
    },
  };
}

async function counter(m: Metrics, name: string, labels?: Record<string, string>) {
  const metric = (await m.registry.getMetricsAsJSON()).find((x) => x.name === name);
  const values = (metric?.values ?? []) as Array<{ value: number; labels: object }>;
  return values.filter((v) =>
    !labels ||
    Object.entries(labels).every(([k, x]) => (v.labels as Record<string, string>)[k] === x)
  ).reduce((n, v) => n + v.value, 0);
}

function reported(seq: number, twin: string, patch: Record<string, unknown>): Accepted {
  const topic = `twins/${twin}/reported`;
  return {
    entry: { seq, topic, payload: enc.encode(JSON.stringify(patch)), at: 1000 + seq },
    topic: { twin, kind: "reported" },
    body: { kind: "reported", patch },
  };
}

const hasId = (records: TwinRecord[], id: string) => records.some((r) => r.state.id === id);

/** Poll `fn` until it is true (2 s at most). */
async function until(fn: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 2_000;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("a twin whose snapshot cannot be stored is quarantined; the others are stored, the node goes on", async () => {
  let broken = false;
  const { persistence: p } = failingStore((rs) =>
    broken && hasId(rs, "bad") ? new RangeError("Maximum call stack size exceeded") : null
  );
  const time = skewedClock();
  const { host: h, metrics } = makeHost(p, { quarantineMs: 300, clock: time.clock });
  await h.putAttributes("bad", { site: "A" });
  await h.putAttributes("good", { site: "A" });
  broken = true;

  // both changes go into one commit; only the bad twin's is refused, and it is never a 200
  const [bad, good] = await Promise.allSettled([
    h.patchDesired("bad", { speed: 1 }),
    h.patchDesired("good", { speed: 1 }),
  ]);
  assert.equal(good.status, "fulfilled");
  assert.equal(bad.status, "rejected");
  const err = (bad as PromiseRejectedResult).reason;
  assert.ok(err instanceof TwinmillError && err.code === "twin_quarantined", String(err));
  assert.equal(err.status, 503);
  assert.match(err.message, /Maximum call stack.*this change was not applied/);
  assert.deepEqual((await p.snapshots.load("good"))?.state.desired, { speed: 1 });

  // reads show the stored state, not the one that was dropped; diagnostics explain
  assert.deepEqual((await h.get("bad"))?.desired, {});
  assert.equal((await h.get("bad"))?.version, 1);
  const d = await h.diagnostics("bad");
  assert.equal(d?.quarantine?.active, true);
  assert.equal(d?.quarantine?.droppedVersion, 2);
  assert.match(d?.quarantine?.reason ?? "", /Maximum call stack/);
  assert.equal(await counter(metrics, "twinmill_twins_quarantined_total"), 1);

  // while it lasts, changes are refused at once (no retry loop holding the node back)
  broken = false;
  await assert.rejects(h.patchDesired("bad", { speed: 2 }), /quarantined until .*takes no changes/);
  await h.patchDesired("good", { speed: 2 });

  // then (300 ms later) the twin takes changes again, from its stored state
  time.skew += 320;
  const s = await h.patchDesired("bad", { speed: 3 });
  assert.equal(s.version, 2);
  assert.deepEqual((await p.snapshots.load("bad"))?.state.desired, { speed: 3 });
  assert.equal((await h.diagnostics("bad"))?.quarantine?.active, false);
  await h.close();
});

Deno.test("quarantine: the device messages applied since the last snapshot are dropped and retired; later ones are refused and counted", async () => {
  let broken = false;
  const { persistence: p } = failingStore((rs) =>
    broken && hasId(rs, "m") ? new RangeError("Invalid string length") : null
  );
  const { host: h, metrics } = makeHost(p, { quarantineMs: 60_000 });
  const first = [reported(1, "m", { a: 1 })];
  await p.log.append(first.map((a) => a.entry));
  h.dispatch(first);
  await until(async () => (await p.snapshots.load("m"))?.state.version === 1, "version 1 stored");

  broken = true;
  const next = [reported(2, "m", { a: 2 }), reported(3, "m", { b: 3 })];
  await p.log.append(next.map((a) => a.entry));
  h.dispatch(next);
  await until(async () => (await h.diagnostics("m"))?.quarantine != null, "the quarantine");
  assert.equal((await h.diagnostics("m"))?.quarantine?.droppedMessages, 2);
  const later = [reported(4, "m", { c: 4 })];
  await p.log.append(later.map((a) => a.entry));
  h.dispatch(later);
  await until(async () => (await h.diagnostics("m"))?.refused.length === 1, "the refusal");
  assert.deepEqual((await h.get("m"))?.reported, { a: 1 });
  assert.equal(
    await counter(metrics, "twinmill_mqtt_messages_rejected_total", { reason: "twin_quarantined" }),
    1,
  );
  assert.deepEqual((await h.diagnostics("m"))?.refused.map((r) => r.reason), ["twin_quarantined"]);
  // nothing left to replay: applied again they would only fail again
  await until(async () => {
    for await (const _ of p.log.replay()) return false;
    return true;
  }, "every entry retired");
  await h.close();
});

Deno.test("a twin that keeps failing while others are stored is quarantined after a few rounds", async () => {
  const { persistence: p } = failingStore((rs) =>
    hasId(rs, "odd") ? new Error("the store refuses this key") : null
  );
  const { host: h } = makeHost(p);
  const started = Date.now();
  const odd = h.putAttributes("odd", { n: 1 });
  for (let i = 0; i < 8; i++) await h.putAttributes(`ok-${i}`, { n: i });
  await assert.rejects(odd, /quarantined.*the store refuses this key/);
  assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
  assert.equal((await p.snapshots.load("ok-7"))?.state.version, 1);
  await h.close();
});

Deno.test("a store down for every twin: nothing dropped or quarantined; commits back off and go through when it is back", async () => {
  let down = true;
  const { persistence: p, calls } = failingStore(() => down ? new Error("disk unavailable") : null);
  const backoff = heldBackoffClock();
  const { host: h } = makeHost(p, { clock: backoff.clock });
  const change = h.putAttributes("x", { site: "A" });
  let answered = false;
  change.then(() => answered = true, () => answered = true);
  // 200, 400, 800 ms between tries: one try per wait, not a tight loop
  for (let i = 1; i <= 3; i++) {
    await until(() => backoff.delays().length === i, `wait ${i}`);
    assert.equal(calls(), i, `${calls()} tries before wait ${i}`);
    assert.equal(answered, false, "no answer while the change is not stored");
    backoff.release();
  }
  await until(() => backoff.delays().length === 4, "wait 4");
  assert.deepEqual(backoff.delays(), [200, 400, 800, 1600]);
  down = false;
  backoff.release();
  const s = await change;
  assert.equal(s.version, 1);
  assert.equal((await p.snapshots.load("x"))?.state.version, 1);
  assert.equal((await h.diagnostics("x"))?.quarantine, null);
  await h.close();
});

Deno.test("an effect that throws is contained: the change stands, the other effects run, it is counted", async () => {
  const p = memoryPersistence();
  const events: unknown[] = [];
  const transport = memoryTransport();
  const { host: h, metrics } = makeHost(p, {
    transport,
    downlink: () => {
      throw new RangeError("Maximum call stack size exceeded");
    },
  });
  const sub = transport.subscribe(subjects.eventsOf("*", "x"), (e) => void events.push(e));
  await h.putAttributes("x", {});
  const s = await h.patchDesired("x", { speed: 4 });
  assert.equal(s.version, 2);
  assert.deepEqual((await p.snapshots.load("x"))?.state.desired, { speed: 4 });
  assert.equal(await counter(metrics, "twinmill_effect_failures_total", { type: "desired" }), 1);
  await until(() => events.length >= 2, "the state events, still published");
  sub.unsubscribe();
  await h.close();
});

Deno.test("size limit: a change past it is refused (413 twin_too_large, device message counted); shrinking is always taken", async () => {
  const p = memoryPersistence();
  const { host: h, metrics } = makeHost(p, { maxTwinBytes: 2_000 });
  await h.putAttributes("t", {});
  await h.patchDesired("t", { a: "x".repeat(900) });
  const err = await h.patchDesired("t", { b: "y".repeat(1200) }).catch((e) => e);
  assert.ok(err instanceof TwinmillError && err.code === "twin_too_large", String(err));
  assert.equal(err.status, 413);
  assert.match(err.message, /over its limit of 2000 bytes/);
  assert.equal((await h.get("t"))?.version, 2);

  const big = [reported(1, "t", { r: "z".repeat(1200) })];
  await p.log.append(big.map((a) => a.entry));
  h.dispatch(big);
  await until(async () => (await h.diagnostics("t"))?.refused.length === 1, "the refusal");
  assert.equal((await h.get("t"))?.version, 2);
  assert.equal(
    await counter(metrics, "twinmill_mqtt_messages_rejected_total", { reason: "twin_too_large" }),
    1,
  );
  assert.equal((await h.diagnostics("t"))?.refused[0]?.reason, "twin_too_large");

  // a twin stored over the limit (e.g. before it was lowered) may still shrink
  await p.snapshots.saveMany([{
    ...(await p.snapshots.load("t"))!,
    state: { ...(await p.snapshots.load("t"))!.state, id: "old", desired: { a: "x".repeat(3000) } },
  }]);
  await assert.rejects(h.patchDesired("old", { b: 1 }), /twin_too_large|over its limit/);
  const shrunk = await h.patchDesired("old", { a: "short" });
  assert.deepEqual(shrunk.desired, { a: "short" });
  await h.close();
});

Deno.test("an HTTP change returns once stored even while the twin's device keeps it busy", async () => {
  // every commit of the twin brings a new device message for it: the twin is never clean
  // assigned once the store (which needs it) exists
  // deno-lint-ignore prefer-const
  let h: TwinHost | undefined;
  let seq = 0;
  let streaming = false;
  const { persistence: p, calls } = failingStore((rs) => {
    if (streaming && hasId(rs, "busy") && seq < 2_000) {
      h!.dispatch([reported(++seq, "busy", { n: seq })]); // applied at once: dirty again
    }
    return null;
  });
  h = makeHost(p).host;
  await h.putAttributes("busy", {});
  streaming = true;
  const before = calls();
  const s = await h.patchDesired("busy", { speed: 1 });
  assert.ok(calls() - before <= 3, `answered after ${calls() - before} commits`);
  assert.ok(((await p.snapshots.load("busy"))?.state.version ?? 0) >= s.version);
  streaming = false;
  await h.close();
});
