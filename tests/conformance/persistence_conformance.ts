/**
 * Conformance cases every persistence adapter must pass. Snapshot stores and inbound logs
 * have separate suites ({@linkcode snapshotConformance}, {@linkcode logConformance}) because
 * some adapters provide only one part (JetStream KV holds snapshots only);
 * {@linkcode persistenceConformance} runs both against a full {@linkcode Persistence}.
 *
 * Each case asks its factory for a fresh {@linkcode Fixture} — empty storage owned by that
 * case — and opens it one or more times. Opening again after disposing the previous handle
 * must see everything that was made durable (a new Deno KV handle on the same file, a new
 * NATS connection on the same bucket, ...).
 *
 * @example
 * ```ts
 * import { snapshotConformance } from "./persistence_conformance.ts";
 * import { denoKvPersistence } from "../../src/persistence/deno_kv.ts";
 *
 * snapshotConformance("deno kv", async () => {
 *   const dir = await Deno.makeTempDir();
 *   return {
 *     async open() {
 *       const p = await denoKvPersistence(`${dir}/state.kv`);
 *       return { store: p.snapshots, [Symbol.asyncDispose]: () => p[Symbol.asyncDispose]() };
 *     },
 *     [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
 *   };
 * });
 * ```
 * @module
 */
import assert from "node:assert/strict";
import { emptyTwin, type TwinRecord } from "../../actors/twin.ts";
import type {
  InboundLog,
  LogEntry,
  Persistence,
  SnapshotStore,
} from "../../src/persistence/port.ts";

/** An open handle on the storage; disposing it closes the handle, not the storage. */
export interface Opened<T> extends AsyncDisposable {
  store: T;
}

/**
 * Storage for one test case. Every `open()` opens a handle on the same data; disposing the
 * fixture removes the storage (temp files, servers).
 */
export interface Fixture<T> extends AsyncDisposable {
  open(): Promise<Opened<T>>;
}

/** Creates fresh, empty storage for one test case. */
export type FixtureFactory<T> = () => Promise<Fixture<T>>;

/** A fixture whose handles expose one part of what `f`'s handles expose. */
function project<T, U>(f: FixtureFactory<T>, part: (t: T) => U): FixtureFactory<U> {
  return async () => {
    const fx = await f();
    return {
      async open() {
        const h = await fx.open();
        return { store: part(h.store), [Symbol.asyncDispose]: () => h[Symbol.asyncDispose]() };
      },
      [Symbol.asyncDispose]: () => fx[Symbol.asyncDispose](),
    };
  };
}

const record = (id: string, version: number, reported: TwinRecord["state"]["reported"] = {}) => {
  const r = emptyTwin(id, 1_700_000_000_000 + version);
  r.state.version = version;
  r.state.reported = reported;
  r.seqs = { mqtt: version * 10 };
  return r;
};

const ids = (rs: TwinRecord[]) => rs.map((r) => r.state.id);

/** Register the snapshot store cases for an adapter. */
export function snapshotConformance(name: string, factory: FixtureFactory<SnapshotStore>): void {
  Deno.test(`${name}: snapshots round-trip and survive reopen (100 kB value, ids with . : - _)`, async () => {
    await using fx = await factory();
    const recs = ["b", "a", "c:1", "a.2", "d-1_x", "x.y:z-w_v", ".lead", "trail.", "a..b"].map(
      (id, i) => record(id, i + 1, { temp: i, big: "x".repeat(i === 0 ? 100_000 : 1) }),
    );
    {
      await using h = await fx.open();
      await h.store.saveMany(recs);
      assert.deepEqual(await h.store.load("c:1"), recs[2]);
    }
    await using h = await fx.open();
    for (const r of recs) assert.deepEqual(await h.store.load(r.state.id), r, r.state.id);
    const all = await h.store.list(undefined, 100);
    assert.deepEqual(ids(all), ids(recs).sort());
    assert.deepEqual(all.find((r) => r.state.id === "b"), recs[0]); // the 100 kB value
  });

  Deno.test(`${name}: snapshots list in id order with paging`, async () => {
    await using fx = await factory();
    await using h = await fx.open();
    assert.deepEqual(await h.store.list(undefined, 10), []);
    // Prefixes whose order differs between ids and any escaped or encoded form of them.
    const prefixes = ["a", "a.", "a:", "a-", "a_", "A", "0", "z:9"];
    const recs = Array.from({ length: 1000 }, (_, i) => record(`${prefixes[i % 8]}${i}`, i + 1));
    const shuffled = recs.map((r, i) => ({ r, k: (i * 7919) % 1000 }))
      .sort((x, y) => x.k - y.k).map((x) => x.r);
    await h.store.saveMany(shuffled);

    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    while (true) {
      const page = await h.store.list(cursor, 100);
      assert.ok(page.length <= 100, `page of ${page.length}`);
      if (page.length === 0) break;
      pages++;
      seen.push(...ids(page));
      cursor = page.at(-1)!.state.id;
    }
    assert.equal(pages, 10);
    assert.deepEqual(seen, ids(recs).sort()); // every id exactly once, in order
    const byId = new Map(recs.map((r) => [r.state.id, r]));
    const some = await h.store.list("a:", 3);
    assert.deepEqual(
      some,
      ids(recs).sort().filter((id) => id > "a:").slice(0, 3).map((id) => byId.get(id)),
    );
    assert.deepEqual(await h.store.list("zz", 10), []);
  });

  Deno.test(`${name}: load of a missing id is null; saving again overwrites`, async () => {
    await using fx = await factory();
    {
      await using h = await fx.open();
      assert.equal(await h.store.load("missing"), null);
      await h.store.saveMany([record("p:1", 1, { temp: 20, door: "open" })]);
      await h.store.saveMany([record("p:1", 2, { temp: 21 }), record("p:2", 1)]);
      assert.equal(await h.store.load("missing"), null);
      assert.equal(await h.store.load("p:"), null);
    }
    await using h = await fx.open();
    assert.deepEqual(await h.store.load("p:1"), record("p:1", 2, { temp: 21 }));
    assert.deepEqual(ids(await h.store.list(undefined, 10)), ["p:1", "p:2"]);
  });
}

const entry = (seq: number, size = 10): LogEntry => ({
  seq,
  topic: `twins/d${seq % 3}/telemetry`,
  payload: new Uint8Array(size).fill(seq % 251),
  at: 1000 + seq,
});

/** Register the inbound log cases for an adapter. */
export function logConformance(name: string, factory: FixtureFactory<InboundLog>): void {
  Deno.test(`${name}: inbound log appends durably, replays in order, retires, keeps high-water mark`, async () => {
    await using fx = await factory();
    const entries = Array.from({ length: 2500 }, (_, i) => entry(i + 1));
    entries.push(entry(2501, 64 * 1024)); // a full-size payload
    {
      await using p = await fx.open();
      await p.store.append(entries);
      await p.store.retire(entries.slice(0, 2000).map((e) => e.seq));
    }
    {
      await using q = await fx.open();
      const replayed: LogEntry[] = [];
      for await (const e of q.store.replay()) replayed.push(e);
      assert.equal(replayed.length, 501);
      assert.deepEqual(replayed.map((e) => e.seq), entries.slice(2000).map((e) => e.seq));
      assert.deepEqual(replayed[0], entries[2000]);
      assert.deepEqual(replayed.at(-1), entries.at(-1));
      await q.store.retire(replayed.map((e) => e.seq));
      assert.equal(await q.store.lastSeq(), 2501);
    }
    await using r = await fx.open();
    const left: LogEntry[] = [];
    for await (const e of r.store.replay()) left.push(e);
    assert.equal(left.length, 0);
    assert.equal(await r.store.lastSeq(), 2501); // survives even when every entry is retired
  });

  Deno.test(`${name}: inbound log entries keep their key and MQTT 5 user properties on replay`, async () => {
    await using fx = await factory();
    const entries: LogEntry[] = [
      { ...entry(1), props: [["line", "L3"], ["shift", "night"], ["shift", "é"]] },
      { ...entry(2), key: -17 },
      entry(3),
      { ...entry(4), key: 5, props: [["line", ""]] },
    ];
    {
      await using p = await fx.open();
      await p.store.append(entries);
    }
    await using q = await fx.open();
    const replayed: LogEntry[] = [];
    for await (const e of q.store.replay()) replayed.push(e);
    assert.deepEqual(replayed, entries);
  });
}

/** Register both suites for an adapter that provides a full {@linkcode Persistence}. */
export function persistenceConformance(name: string, factory: FixtureFactory<Persistence>): void {
  snapshotConformance(name, project(factory, (p) => p.snapshots));
  logConformance(name, project(factory, (p) => p.log));
}

/** Wraps an open {@linkcode Persistence} as a fixture handle; disposing the handle disposes it. */
export function persistenceHandle(p: Persistence): Opened<Persistence> {
  return { store: p, [Symbol.asyncDispose]: () => p[Symbol.asyncDispose]() };
}
