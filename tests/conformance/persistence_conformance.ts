/**
 * Conformance cases every persistence adapter must pass. Each adapter's test file calls
 * {@linkcode persistenceConformance} with a factory.
 * @module
 */
import assert from "node:assert/strict";
import { emptyTwin } from "../../actors/twin.ts";
import type { LogEntry, Persistence } from "../../src/persistence/port.ts";

/** Open a fresh persistence; `reopen` opens the same storage again (for durability). */
export interface PersistenceFactory {
  open(): Promise<{ p: Persistence; reopen(): Promise<Persistence> }>;
}

const entry = (seq: number, size = 10): LogEntry => ({
  seq,
  topic: `twins/d${seq % 3}/telemetry`,
  payload: new Uint8Array(size).fill(seq % 251),
  at: 1000 + seq,
});

/** Register the conformance tests for an adapter. */
export function persistenceConformance(name: string, f: PersistenceFactory): void {
  Deno.test(`${name}: snapshots round-trip, survive reopen, list in id order with paging`, async () => {
    const { p, reopen } = await f.open();
    const recs = ["b", "a", "c:1", "a.2"].map((id, i) => {
      const r = emptyTwin(id, i);
      r.state.version = i + 1;
      r.state.reported = { temp: i, big: "x".repeat(i === 0 ? 100_000 : 1) };
      r.seqs = { mqtt: i * 10 };
      return r;
    });
    await p.snapshots.saveMany(recs);
    assert.equal(await p.snapshots.load("missing"), null);
    await p[Symbol.asyncDispose]();
    await using q = await reopen();
    const b = await q.snapshots.load("b");
    assert.deepEqual(b, recs[0]); // 100 kB value survives (split into parts)
    const page1 = await q.snapshots.list(undefined, 2);
    assert.deepEqual(page1.map((r) => r.state.id), ["a", "a.2"]);
    const page2 = await q.snapshots.list("a.2", 10);
    assert.deepEqual(page2.map((r) => r.state.id), ["b", "c:1"]);
  });

  Deno.test(`${name}: inbound log appends durably, replays in order, retires, keeps high-water mark`, async () => {
    const { p, reopen } = await f.open();
    const entries = Array.from({ length: 2500 }, (_, i) => entry(i + 1));
    entries.push(entry(2501, 64 * 1024)); // a full-size payload
    await p.log.append(entries);
    await p.log.retire(entries.slice(0, 2000).map((e) => e.seq));
    await p[Symbol.asyncDispose]();
    const q = await reopen();
    const replayed: LogEntry[] = [];
    for await (const e of q.log.replay()) replayed.push(e);
    assert.equal(replayed.length, 501);
    assert.deepEqual(replayed.map((e) => e.seq), entries.slice(2000).map((e) => e.seq));
    assert.deepEqual(replayed[0], entries[2000]);
    assert.deepEqual(replayed.at(-1), entries.at(-1));
    await q.log.retire(replayed.map((e) => e.seq));
    assert.equal(await q.log.lastSeq(), 2501);
    await q[Symbol.asyncDispose]();
    await using r = await reopen();
    const left: LogEntry[] = [];
    for await (const e of r.log.replay()) left.push(e);
    assert.equal(left.length, 0);
    assert.equal(await r.log.lastSeq(), 2501); // survives even when every entry is retired
  });
}
