import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { emptyTwin } from "../../actors/twin.ts";
import { snapshotConformance } from "../../tests/conformance/persistence_conformance.ts";
import { startNats, startNatsCluster } from "../../tests/harness/mod.ts";
import { storedRecords } from "../runtime/list_twins.ts";
import {
  type JetStreamSnapshotOptions,
  jetstreamSnapshotStore,
  SnapshotTooLargeError,
  twinIdOfKey,
  twinKey,
} from "./jetstream_kv.ts";

/** A connection and a store on it; disposing drains the connection. */
async function openStore(url: string, opts?: JetStreamSnapshotOptions) {
  const nc = await connect({ servers: url });
  try {
    const store = await jetstreamSnapshotStore(nc, opts);
    return { store, [Symbol.asyncDispose]: () => nc.drain() };
  } catch (err) {
    await nc.close();
    throw err;
  }
}

// "Reopen" is a new connection and a new store on the same bucket of the same server.
snapshotConformance("jetstream kv", async () => {
  const nats = await startNats({ jetstream: true });
  return {
    open: () => openStore(nats.url),
    [Symbol.asyncDispose]: () => nats[Symbol.asyncDispose](),
  };
});

Deno.test("jetstream kv: twin keys are valid KV keys and decode to the id", () => {
  assert.equal(twinKey("press-7_a"), "press-7_a");
  assert.equal(twinKey("line.3:press"), "line=2E3=3Apress");
  assert.equal(twinKey(".a..b."), "=2Ea=2E=2Eb=2E");
  for (const id of ["press-7", "a:b.c", ".", "=3A", "a/b", "x y", "ü€😀", "A".repeat(128)]) {
    const key = twinKey(id);
    assert.match(key, /^[-=\w]+$/, key);
    assert.equal(twinIdOfKey(key), id);
  }
  assert.throws(() => twinKey(""), /empty id/);
  assert.throws(() => twinIdOfKey("a=3"), /Cannot decode twin key "a=3"/);
});

Deno.test("jetstream kv: a snapshot over the limit fails clearly and nothing of the batch is written", async () => {
  await using nats = await startNats({ jetstream: true });
  await using h = await openStore(nats.url, { bucket: "big" });
  const near = emptyTwin("near", 1);
  near.state.reported = { blob: "x".repeat(850_000) };
  await h.store.saveMany([near]);
  assert.deepEqual(await h.store.load("near"), near);

  const ok = emptyTwin("ok", 1);
  const huge = emptyTwin("p:huge", 1);
  huge.state.reported = { blob: "x".repeat(950_000) };
  const err = await h.store.saveMany([ok, huge]).then(() => null, (e) => e);
  assert.ok(err instanceof SnapshotTooLargeError, String(err));
  assert.equal(err.code, "snapshot_too_large");
  assert.match(
    err.message,
    /^Cannot persist twin "p:huge": snapshot is \d+ bytes, over the 900 KB limit$/,
  );
  assert.equal(await h.store.load("ok"), null);
  assert.equal(await h.store.load("p:huge"), null);
});

Deno.test("jetstream kv: revision is null for a missing twin and grows with each save", async () => {
  await using nats = await startNats({ jetstream: true });
  await using h = await openStore(nats.url);
  assert.equal(await h.store.revision("a:1"), null);
  await h.store.saveMany([emptyTwin("a:1", 1)]);
  const first = await h.store.revision("a:1");
  assert.ok(first !== null && first > 0);
  await h.store.saveMany([emptyTwin("a:1", 2)]);
  assert.ok((await h.store.revision("a:1"))! > first);
});

Deno.test("jetstream kv: 3-node cluster, bucket with 3 replicas: saved via n1, read via n3", async () => {
  await using cluster = await startNatsCluster(3);
  const recs = ["press:1", "line.2", "conveyor-3"].map((id, i) => {
    const r = emptyTwin(id, i);
    r.state.version = i + 1;
    r.state.reported = { temp: 20 + i };
    r.seqs = { "js.3": i };
    return r;
  });
  await using w = await openStore(cluster.servers[0].url, { replicas: 3 });
  await w.store.saveMany(recs);
  await using r = await openStore(cluster.servers[2].url, { replicas: 3 });
  for (const rec of recs) {
    assert.deepEqual(await r.store.load(rec.state.id), rec);
    assert.equal(await r.store.revision(rec.state.id), await w.store.revision(rec.state.id));
  }
  const listed = await r.store.list(undefined, 10);
  assert.deepEqual(listed.map((x) => x.state.id), ["conveyor-3", "line.2", "press:1"]);
});

Deno.test("jetstream kv: a whole walk yields every twin in id order and reads the keys once", async () => {
  await using nats = await startNats({ jetstream: true });
  await using h = await openStore(nats.url, { bucket: "walk" });
  const ids = Array.from({ length: 1_200 }, (_, i) => `w:${String(i).padStart(4, "0")}`);
  for (let i = 0; i < ids.length; i += 200) {
    await h.store.saveMany(ids.slice(i, i + 200).map((id) => emptyTwin(id, 1)));
  }
  // every key listing is a consumer on the bucket's stream: count them
  const spy = await connect({ servers: nats.url });
  let listings = 0;
  const sub = spy.subscribe("$JS.API.CONSUMER.CREATE.KV_walk.>", {
    callback: () => void listings++,
  });
  await spy.flush();
  try {
    const walked: string[] = [];
    for await (const r of storedRecords(h.store)) walked.push(r.state.id);
    assert.deepEqual(walked, ids);
    await spy.flush();
    // paging through list() read every key once per page of 500: 3 listings and more
    assert.equal(listings, 1);
  } finally {
    sub.unsubscribe();
    await spy.close();
  }
});
