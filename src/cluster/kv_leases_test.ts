import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { KvLeases, KvMembership } from "./kv_leases.ts";
import { Liveness } from "./liveness.ts";
import { systemClock } from "../runtime/clock.ts";
import { silentLogger } from "../obs/log.ts";
import { startNats, waitFor } from "../../tests/harness/mod.ts";

Deno.test("leases: one holder, CAS renewals, expiry on the server's clock, epochs only grow", async () => {
  await using srv = await startNats({ jetstream: true });
  const nca = await connect({ servers: srv.url });
  const ncb = await connect({ servers: srv.url });
  try {
    const a = await KvLeases.open({ nc: nca, nodeId: "a", leaseMs: 1000, clock: systemClock });
    const b = await KvLeases.open({ nc: ncb, nodeId: "b", leaseMs: 1000, clock: systemClock });
    assert.deepEqual(await a.acquire(7), { epoch: 1 });
    assert.equal(await b.acquire(7), null);
    assert.equal(await a.renew(7), true);
    assert.equal(await b.renew(7), false); // b never held it
    assert.deepEqual(await b.all(), new Map([[7, { node: "a", epoch: 1 }]]));
    // a stops renewing: the lease expires and b takes it with epoch 2
    const took = await waitFor(() => b.acquire(7), { timeoutMs: 10_000, message: "lease expires" });
    assert.deepEqual(took, { epoch: 2 });
    assert.equal(await a.renew(7), false); // fenced
    await b.release(7);
    const epochs: number[] = [];
    for (let i = 0; i < 10; i++) {
      const who = i % 2 ? a : b;
      epochs.push((await who.acquire(7))!.epoch);
      await who.release(7);
    }
    assert.deepEqual(epochs, [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  } finally {
    await nca.close();
    await ncb.close();
  }
});

Deno.test("membership: heartbeats list live nodes; a silent node ages out; leave removes at once", async () => {
  await using srv = await startNats({ jetstream: true });
  const nc = await connect({ servers: srv.url });
  try {
    const o = { heartbeatMs: 300, clock: systemClock, logger: silentLogger };
    const info = (id: string) => ({ id, http: `http://${id}`, mqtt: null, startedAt: 1 });
    const a = await KvMembership.start(nc, info("a"), o);
    const b = await KvMembership.start(nc, info("b"), o);
    const c = await KvMembership.start(nc, info("c"), o);
    assert.deepEqual(await a.liveNodes(), ["a", "b", "c"]);
    await c.leave();
    assert.deepEqual(await a.liveNodes(), ["a", "b"]);
    b.stop(); // crash: no more heartbeats
    await waitFor(async () => (await a.liveNodes()).length === 1, {
      timeoutMs: 5000,
      message: "b ages out",
    });
    a.stop();
  } finally {
    await nc.close();
  }
});

Deno.test("takeover: a gone holder's lease is taken by CAS before it expires; a live or renewing holder keeps it", async () => {
  await using srv = await startNats({ jetstream: true });
  const nca = await connect({ servers: srv.url });
  const ncb = await connect({ servers: srv.url });
  const nca2 = await connect({ servers: srv.url });
  try {
    const o = { leaseMs: 60_000, clock: systemClock, takeoverMs: 300 }; // expiry never helps
    const liveA = await Liveness.serve(nca, "a");
    const a = await KvLeases.open({ nc: nca, nodeId: "a", liveness: liveA, ...o });
    const b = await KvLeases.open({
      nc: ncb,
      nodeId: "b",
      liveness: await Liveness.serve(ncb, "b"),
      ...o,
    });
    assert.deepEqual(await a.acquire(1), { epoch: 1 });
    assert.deepEqual(await a.acquire(2), { epoch: 1 });
    assert.ok(a.valid(1));
    assert.equal(b.valid(1), false);
    // a answers its probes: never taken, however long b tries
    for (let i = 0; i < 4; i++) {
      assert.equal(await b.acquire(1), null);
      await new Promise((r) => setTimeout(r, 120));
    }
    // a stops answering but keeps renewing (a false "gone"): the revision moves, no takeover
    liveA.stop();
    let renewedAt = 0;
    for (let i = 0; i < 5; i++) {
      assert.equal(await a.renew(1), true);
      renewedAt = Date.now();
      assert.equal(await b.acquire(1), null);
      await new Promise((r) => setTimeout(r, 120));
    }
    // a renews no more: taken after the takeover time, with the next epoch
    const took = await waitFor(() => b.acquire(1), { timeoutMs: 5000, message: "takeover" });
    assert.deepEqual(took, { epoch: 2 });
    assert.ok(Date.now() - renewedAt >= 300, "not before it stayed unrenewed for takeoverMs");
    assert.equal(await a.renew(1), false); // a fences itself
    assert.equal(a.valid(1), false);
    // a killed: its connection is gone. A new "a" takes its own stale lease back at once.
    await nca.close();
    const a2 = await KvLeases.open({
      nc: nca2,
      nodeId: "a",
      liveness: await Liveness.serve(nca2, "a"),
      ...o,
    });
    assert.deepEqual(await a2.acquire(2), { epoch: 2 });
    assert.deepEqual(
      await b.all(),
      new Map([[1, { node: "b", epoch: 2 }], [2, { node: "a", epoch: 2 }]]),
    );
  } finally {
    await nca.close();
    await ncb.close();
    await nca2.close();
  }
});
