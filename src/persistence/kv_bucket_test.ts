import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { jetstreamManager } from "@nats-io/jetstream";
import { bucketKeys, liveEntries, openBucket } from "./kv_bucket.ts";
import { startNats, waitFor } from "../../tests/harness/mod.ts";

Deno.test("kv bucket: lists live PUTs in key order, skips deletes, forgets expired keys", async () => {
  await using srv = await startNats({ jetstream: true });
  const nc = await connect({ servers: srv.url });
  try {
    const jsm = await jetstreamManager(nc);
    const kv = await new Kvm(nc).create("scan", { history: 1, ttl: 500 });
    assert.deepEqual(await bucketKeys(jsm, "scan"), []);
    await kv.put("b.2", "two");
    await kv.put("a", "one");
    await kv.put("gone", "x");
    await kv.delete("gone");
    const live = await liveEntries(jsm, kv, "scan");
    assert.deepEqual([...live.keys()], ["a", "b.2"]);
    assert.equal(live.get("b.2")!.string(), "two");
    assert.deepEqual((await bucketKeys(jsm, "scan")).sort(), ["a", "b.2", "gone"]);
    await waitFor(async () => (await bucketKeys(jsm, "scan")).length === 0, {
      message: "every key expires",
    });
    assert.deepEqual(await liveEntries(jsm, kv, "scan"), new Map());
  } finally {
    await nc.close();
  }
});

Deno.test("kv bucket: many concurrent opens of a new bucket all succeed", async () => {
  await using srv = await startNats({ jetstream: true });
  const conns = await Promise.all([1, 2, 3, 4].map(() => connect({ servers: srv.url })));
  try {
    for (let round = 0; round < 5; round++) {
      const kvs = await Promise.all(
        conns.map((nc) => openBucket(nc, `race${round}`, { history: 1, ttl: 1000 })),
      );
      await kvs[0].put("k", "v");
      assert.equal((await kvs[3].get("k"))?.string(), "v");
    }
  } finally {
    await Promise.all(conns.map((nc) => nc.close()));
  }
});
