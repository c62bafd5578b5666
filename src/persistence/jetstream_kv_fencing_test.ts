/**
 * Epoch fencing of snapshot writes in the JetStream KV store, against a real nats-server: two
 * stores on two connections play two nodes that both believe they own one shard, the stale one
 * with epoch 1 (paused past its lease, say) and the new owner with epoch 2.
 */
import assert from "node:assert/strict";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { emptyTwin, type TwinRecord } from "../../actors/twin.ts";
import { snapshotConformance } from "../../tests/conformance/persistence_conformance.ts";
import { startNats } from "../../tests/harness/mod.ts";
import { UnavailableError } from "../errors.ts";
import { type JetStreamSnapshotStore, jetstreamSnapshotStore, twinKey } from "./jetstream_kv.ts";

/** A node's view of the shard: its epoch (undefined: not held) and what the store told it. */
interface Node {
  nc: NatsConnection;
  store: JetStreamSnapshotStore;
  epoch: number | undefined;
  fenced: Array<[string, number, number]>;
  overwrote: Array<[string, number, number]>;
}

async function node(url: string, epoch: number | undefined): Promise<Node> {
  const nc = await connect({ servers: url });
  const n: Node = { nc, epoch, fenced: [], overwrote: [], store: undefined! };
  n.store = await jetstreamSnapshotStore(nc, {
    fencing: {
      epochOf: () => n.epoch,
      fenced: (id, stored, own) => {
        n.fenced.push([id, stored, own]);
        n.epoch = undefined; // the shard is no longer held here
      },
      overwrote: (id, stored, own) => n.overwrote.push([id, stored, own]),
    },
  });
  return n;
}

function twin(id: string, version: number): TwinRecord {
  const r = emptyTwin(id, 1);
  r.state.version = version;
  return r;
}

async function storedVersion(url: string, id: string): Promise<[number, number | undefined]> {
  const nc = await connect({ servers: url });
  try {
    const kv = await new Kvm(nc).open("tm_twins");
    const v = (await kv.get(twinKey(id)))!.json<TwinRecord & { epoch?: number }>();
    return [v.state.version, v.epoch];
  } finally {
    await nc.close();
  }
}

// an owner of every shard behaves as the store's contract says (reopened: a new connection)
snapshotConformance("jetstream kv, epoch-fenced", async () => {
  const nats = await startNats({ jetstream: true });
  return {
    open: async () => {
      const n = await node(nats.url, 1);
      return { store: n.store, [Symbol.asyncDispose]: () => n.nc.drain() };
    },
    [Symbol.asyncDispose]: () => nats[Symbol.asyncDispose](),
  };
});

Deno.test("snapshot fencing: a stale owner's write after the new owner's fails and leaves the stored snapshot alone", async () => {
  await using nats = await startNats({ jetstream: true });
  const stale = await node(nats.url, 1);
  const owner = await node(nats.url, 2);
  try {
    assert.equal(await stale.store.load("x"), null);
    await stale.store.saveMany([twin("x", 9)]);
    // the new owner loads what the stale one wrote, then writes
    assert.equal((await owner.store.load("x"))!.state.version, 9);
    await owner.store.saveMany([twin("x", 47)]);
    // the stale owner resumes and writes what it had before its pause
    await assert.rejects(stale.store.saveMany([twin("x", 10)]), UnavailableError);
    assert.deepEqual(await storedVersion(nats.url, "x"), [47, 2]);
    assert.deepEqual(stale.fenced, [["x", 2, 1]]);
    assert.deepEqual(owner.fenced, []);
    // the owner goes on writing at the revision it keeps
    await owner.store.saveMany([twin("x", 48)]);
    assert.deepEqual(await storedVersion(nats.url, "x"), [48, 2]);
    assert.deepEqual(owner.overwrote, []);
  } finally {
    await stale.nc.close();
    await owner.nc.close();
  }
});

Deno.test("snapshot fencing: the new owner overwrites a stale write that landed after its load", async () => {
  await using nats = await startNats({ jetstream: true });
  const stale = await node(nats.url, 1);
  const owner = await node(nats.url, 2);
  try {
    await stale.store.load("y");
    await stale.store.saveMany([twin("y", 5)]);
    assert.equal((await owner.store.load("y"))!.state.version, 5);
    // the stale write lands between the owner's load and its first write
    await stale.store.saveMany([twin("y", 6)]);
    await owner.store.saveMany([twin("y", 7)]);
    assert.deepEqual(await storedVersion(nats.url, "y"), [7, 2]);
    assert.deepEqual(owner.overwrote, [["y", 1, 2]]);
    // and the stale owner, writing again, is fenced
    await assert.rejects(stale.store.saveMany([twin("y", 8)]), UnavailableError);
    assert.deepEqual(stale.fenced, [["y", 2, 1]]);
    assert.deepEqual(await storedVersion(nats.url, "y"), [7, 2]);
  } finally {
    await stale.nc.close();
    await owner.nc.close();
  }
});

Deno.test("snapshot fencing: a stale owner loading a newer owner's snapshot fences itself; a twin created by both is the newer owner's", async () => {
  await using nats = await startNats({ jetstream: true });
  const stale = await node(nats.url, 1);
  const owner = await node(nats.url, 2);
  try {
    assert.equal(await stale.store.load("new"), null);
    assert.equal(await owner.store.load("new"), null);
    await owner.store.saveMany([twin("new", 1)]);
    await assert.rejects(stale.store.saveMany([twin("new", 3)]), UnavailableError);
    assert.deepEqual(await storedVersion(nats.url, "new"), [1, 2]);

    const late = await node(nats.url, 1);
    try {
      await assert.rejects(late.store.load("new"), UnavailableError);
      assert.deepEqual(late.fenced, [["new", 2, 1]]);
    } finally {
      await late.nc.close();
    }
  } finally {
    await stale.nc.close();
    await owner.nc.close();
  }
});

Deno.test("snapshot fencing: a snapshot without an epoch (a node before fencing) reads as epoch 0; the record loads without the epoch", async () => {
  await using nats = await startNats({ jetstream: true });
  const owner = await node(nats.url, 1);
  try {
    const kv = await new Kvm(owner.nc).open("tm_twins");
    await kv.put(twinKey("old"), JSON.stringify(twin("old", 3)));
    assert.deepEqual(await owner.store.load("old"), twin("old", 3));
    await owner.store.saveMany([twin("old", 4)]);
    assert.deepEqual(await storedVersion(nats.url, "old"), [4, 1]);
    assert.deepEqual(await owner.store.load("old"), twin("old", 4));
    assert.deepEqual((await owner.store.list(undefined, 10)).map((r) => r.state.version), [4]);
    assert.deepEqual([owner.fenced, owner.overwrote], [[], []]);
  } finally {
    await owner.nc.close();
  }
});

Deno.test("snapshot fencing: a write needs the shard held here, and a loaded twin's writes cost one request each", async () => {
  await using nats = await startNats({ jetstream: true });
  const owner = await node(nats.url, 4);
  try {
    await owner.store.load("z");
    const before = owner.nc.stats().outMsgs;
    for (let v = 1; v <= 5; v++) await owner.store.saveMany([twin("z", v)]);
    assert.equal(owner.nc.stats().outMsgs - before, 5);
    owner.epoch = undefined;
    await assert.rejects(owner.store.saveMany([twin("z", 6)]), UnavailableError);
    assert.deepEqual(await storedVersion(nats.url, "z"), [5, 4]);
  } finally {
    await owner.nc.close();
  }
});
