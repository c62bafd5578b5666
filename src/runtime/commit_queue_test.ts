/**
 * The commit queue on a manual clock: group commit after the flush delay, retirement only
 * once every need of an entry is met, a store down for everyone retried with backoff (nothing
 * dropped), a twin that alone cannot be stored given up, fenced twins never retired.
 */
import assert from "node:assert/strict";
import { CommitQueue, type CommitQueueOptions } from "./commit_queue.ts";
import { ManualClock } from "./clock.ts";
import { memoryPersistence } from "../persistence/memory.ts";
import { silentLogger } from "../obs/log.ts";
import { createMetrics } from "../obs/metrics.ts";
import { emptyTwin, type TwinRecord } from "../../actors/twin.ts";
import type { SnapshotStore } from "../persistence/port.ts";

/** Twin `id` at `version`. */
function rec(id: string, version: number): TwinRecord {
  const r = emptyTwin(id, 0);
  return { ...r, state: { ...r.state, version } };
}

function setup(extra: Partial<CommitQueueOptions> & { snapshots?: SnapshotStore } = {}) {
  const clock = new ManualClock(1_000);
  const p = memoryPersistence();
  const retired: number[] = [];
  const given: Array<{ id: string; version: number; lost: number }> = [];
  const q = new CommitQueue({
    snapshots: p.snapshots,
    log: { retire: (seqs) => (retired.push(...seqs), Promise.resolve()) },
    clock,
    logger: silentLogger,
    metrics: createMetrics(),
    flushDelayMs: 5,
    resident: () => true,
    unstorable: (id, dropped, lost) => given.push({ id, version: dropped.state.version, lost }),
    ...extra,
  });
  return { q, clock, p, retired, given };
}

Deno.test("commit queue: group commit after the delay; an entry retires once every need is met", async () => {
  const { q, clock, p, retired } = setup();
  q.begin(1); // processing guard
  q.change("a", rec("a", 1), 1);
  q.need(1); // a point being written
  q.done(1); // delivered
  assert.equal(q.pending, 1);
  assert.equal(q.has("a"), true);
  await clock.advance(4);
  assert.equal(await p.snapshots.load("a"), null, "not before the flush delay");
  await clock.advance(1);
  assert.equal((await p.snapshots.load("a"))?.state.version, 1);
  assert.deepEqual(retired, [], "the point is not written yet");
  assert.equal(q.savedAt("a"), 1_005);
  q.done(1); // the point is written
  assert.equal(q.pending, 0);
  await clock.advance(5);
  assert.deepEqual(retired, [1]);
  assert.equal(q.has("a"), false);
});

Deno.test("commit queue: flush() commits at once; stored() follows change numbers", async () => {
  const { q, p } = setup();
  const first = q.change("a", rec("a", 1), undefined);
  const second = q.change("a", rec("a", 2), undefined);
  assert.equal(q.stored("a", first), false);
  assert.equal(q.uncommitted("a")?.state.version, 2);
  await q.flush();
  assert.equal((await p.snapshots.load("a"))?.state.version, 2, "the latest record only");
  assert.equal(q.stored("a", second), true);
  await q.evict("a");
  assert.equal(q.savedAt("a"), undefined);
});

Deno.test("commit queue: a store down for everyone is retried with backoff on the clock; nothing dropped", async () => {
  const p = memoryPersistence();
  let down = true;
  let attempts = 0;
  const snapshots: SnapshotStore = {
    ...p.snapshots,
    saveMany(records) {
      attempts++;
      return down ? Promise.reject(new Error("store down")) : p.snapshots.saveMany(records);
    },
  };
  const { q, clock, retired, given } = setup({ snapshots });
  q.begin(1);
  q.change("a", rec("a", 1), 1);
  q.done(1);
  q.begin(2);
  q.change("b", rec("b", 1), 2);
  q.done(2);
  let flushed = false;
  const f = q.flush().then(() => (flushed = true));
  await clock.advance(0);
  const first = attempts;
  assert.ok(first >= 1);
  await clock.advance(199);
  assert.equal(attempts, first, "the retry waits 200 ms");
  assert.equal(flushed, false, "the flush waits for the store");
  down = false;
  await clock.advance(1);
  await f;
  assert.equal((await p.snapshots.load("a"))?.state.version, 1);
  assert.equal((await p.snapshots.load("b"))?.state.version, 1);
  assert.deepEqual(retired.sort(), [1, 2]);
  assert.deepEqual(given, []);
});

Deno.test("commit queue: a twin that alone cannot be stored is given up; the others are stored", async () => {
  const p = memoryPersistence();
  const snapshots: SnapshotStore = {
    ...p.snapshots,
    saveMany(records) {
      return records.some((r) => r.state.id === "bad")
        ? Promise.reject(new RangeError("Invalid string length"))
        : p.snapshots.saveMany(records);
    },
  };
  const { q, retired, given } = setup({ snapshots });
  q.begin(1);
  q.change("bad", rec("bad", 3), 1);
  q.done(1);
  q.begin(2);
  q.change("ok", rec("ok", 1), 2);
  q.done(2);
  await q.flush();
  await q.flush();
  assert.deepEqual(given, [{ id: "bad", version: 3, lost: 1 }]);
  assert.equal((await p.snapshots.load("ok"))?.state.version, 1);
  assert.equal(await p.snapshots.load("bad"), null);
  assert.deepEqual(retired.sort(), [1, 2], "a lost entry is retired: applied again it would fail");
  assert.equal(q.has("bad"), false);
});

Deno.test("commit queue: changes of fenced twins are dropped and their entries never retired", async () => {
  const { q, p, retired } = setup({ mayPersist: (id) => id !== "moved" });
  q.begin(1);
  q.change("moved", rec("moved", 1), 1);
  q.done(1);
  q.begin(2);
  q.change("mine", rec("mine", 1), 2);
  q.done(2);
  await q.flush();
  await q.flush();
  assert.equal(await p.snapshots.load("moved"), null);
  assert.deepEqual(retired, [2]);
  assert.equal(q.pending, 0);
  q.done(1); // a late need of a fenced entry changes nothing
  await q.flush();
  assert.deepEqual(retired, [2]);
});

Deno.test("commit queue: dropWhere drops uncommitted changes; the entries are never retired", async () => {
  let drained = 0;
  const { q, p, retired } = setup({ drained: () => drained++ });
  q.begin(1);
  q.change("a", rec("a", 1), 1);
  q.done(1);
  q.dropWhere((id) => id === "a");
  assert.equal(q.pending, 0);
  assert.ok(drained > 0, "ingest waiting for room is told");
  await q.flush();
  assert.equal(await p.snapshots.load("a"), null);
  assert.deepEqual(retired, []);
  await q.close();
});

Deno.test("commit queue: a twin dropped while its commit ran (shard lost) is not kept when that commit fails, so it cannot be written once the shard is owned again", async () => {
  const written: number[] = [];
  let release!: (ok: boolean) => void;
  let first = true;
  const snapshots: SnapshotStore = {
    load: () => Promise.resolve(null),
    list: () => Promise.resolve([]),
    saveMany(records) {
      if (first) {
        first = false; // the commit in flight across a pause: it fails after the drop
        return new Promise((resolve, reject) => {
          release = (ok) => ok ? resolve() : reject(new Error("timeout"));
        });
      }
      written.push(...records.map((r) => r.state.version));
      return Promise.resolve();
    },
  };
  const { q, retired } = setup({ snapshots, mayPersist: () => true });
  q.begin(1);
  q.change("a", rec("a", 7), 1);
  q.done(1);
  const flushed = q.flush();
  await Promise.resolve();
  await Promise.resolve();
  q.dropWhere((id) => id === "a"); // the shard was fenced meanwhile
  release(false);
  await flushed;
  await q.flush(); // the shard is owned again (mayPersist true): nothing stale goes out
  assert.deepEqual(written, []);
  assert.deepEqual(retired, []);
  assert.equal(q.pending, 0);
});
