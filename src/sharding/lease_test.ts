import assert from "node:assert/strict";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { leaseKey, LeaseManager, type LeaseManagerOptions } from "./lease.ts";
import { type Clock, ManualClock, systemClock } from "../runtime/clock.ts";
import { silentLogger } from "../obs/log.ts";
import { type NatsServer, startNats, waitFor } from "../../tests/harness/mod.ts";

const LEASE_MS = 1000;

/** Two connections to one JetStream server, closed on dispose. */
async function twoNodes(srv: NatsServer) {
  const conns: NatsConnection[] = [];
  for (let i = 0; i < 2; i++) conns.push(await connect({ servers: srv.url }));
  return {
    conns,
    async [Symbol.asyncDispose]() {
      await Promise.all(conns.map((c) => c.close()));
    },
  };
}

function manager(
  nc: NatsConnection,
  nodeId: string,
  clock: Clock,
  extra: Partial<LeaseManagerOptions> = {},
): LeaseManager {
  return new LeaseManager({ nc, nodeId, leaseMs: LEASE_MS, clock, logger: silentLogger, ...extra });
}

Deno.test("lease: one holder per shard; expiry on the server's clock; takeover with epoch+1; the old holder is fenced", async () => {
  await using srv = await startNats({ jetstream: true });
  await using nodes = await twoNodes(srv);
  // a's clock never moves: it cannot self-fence, so its renew really asks the server
  const aLost: number[] = [];
  await using a = manager(nodes.conns[0], "a", new ManualClock(0), {
    onLost: (shard) => aLost.push(shard),
  });
  await using b = manager(nodes.conns[1], "b", systemClock);

  assert.deepEqual(await a.acquire(7), { epoch: 1 });
  assert.deepEqual(await a.acquire(7), { epoch: 1 }, "acquire is idempotent for the holder");
  assert.equal(await b.acquire(7), null);
  assert.deepEqual(await b.owner(7), { node: "a", epoch: 1 });
  assert.equal(await a.renew(7), true);
  assert.equal(await b.renew(7), false, "b never held it");
  assert.deepEqual(await b.all(), new Map([[7, { node: "a", epoch: 1 }]]));
  assert.ok(a.isHeld(7) && !b.isHeld(7));

  // a stops renewing: the server drops the key after the bucket TTL, b takes the shard
  const stoppedAt = Date.now();
  const took = await waitFor(() => b.acquire(7), { timeoutMs: 10_000, message: "lease expires" });
  assert.ok(Date.now() - stoppedAt >= LEASE_MS - 100, "expired too early");
  assert.deepEqual(took, { epoch: 2 });
  assert.deepEqual(await a.owner(7), { node: "b", epoch: 2 });

  assert.equal(await a.renew(7), false, "the server refuses a's renew: fenced");
  assert.deepEqual(aLost, [7]);
  assert.ok(!a.isHeld(7));
  assert.equal(await a.renew(7), false);
  assert.deepEqual(aLost, [7], "onLost fires once");
  assert.equal(await b.renew(7), true);
});

Deno.test("lease: release lets another node acquire at once; epochs never repeat over 20 cycles", async () => {
  await using srv = await startNats({ jetstream: true });
  await using nodes = await twoNodes(srv);
  const lost: number[] = [];
  await using a = manager(nodes.conns[0], "a", systemClock, { onLost: (s) => lost.push(s) });
  await using b = manager(nodes.conns[1], "b", systemClock, { onLost: (s) => lost.push(s) });

  assert.deepEqual(await a.acquire(3), { epoch: 1 });
  await a.release(3);
  assert.ok(!a.isHeld(3));
  assert.equal(await a.owner(3), null);
  assert.deepEqual(await b.acquire(3), { epoch: 2 }, "no waiting for expiry after a release");
  await b.release(3);
  await b.release(3); // not held: no-op

  const epochs: number[] = [];
  for (let i = 0; i < 20; i++) {
    const who = i % 2 ? a : b;
    const other = i % 2 ? b : a;
    const got = await who.acquire(3);
    assert.ok(got, `cycle ${i}`);
    assert.equal(await other.acquire(3), null);
    epochs.push(got.epoch);
    await who.release(3);
  }
  assert.deepEqual(epochs, Array.from({ length: 20 }, (_, i) => i + 3));
  // other shards count on their own
  assert.deepEqual(await a.acquire(4), { epoch: 1 });
  assert.deepEqual(lost, [], "releases are not losses");
});

Deno.test("lease: concurrent acquires of free shards — exactly one winner each, unique epochs", async () => {
  await using srv = await startNats({ jetstream: true });
  await using nodes = await twoNodes(srv);
  await using a = manager(nodes.conns[0], "a", systemClock);
  await using b = manager(nodes.conns[1], "b", systemClock);
  const seen: number[] = [];
  for (let round = 0; round < 10; round++) {
    const [ra, rb] = await Promise.all([a.acquire(5), b.acquire(5)]);
    assert.ok((ra === null) !== (rb === null), `round ${round}: ${ra} ${rb}`);
    const winner = ra ? a : b;
    seen.push((ra ?? rb)!.epoch);
    assert.deepEqual(await a.owner(5), { node: ra ? "a" : "b", epoch: (ra ?? rb)!.epoch });
    await winner.release(5);
  }
  assert.deepEqual(seen, Array.from({ length: 10 }, (_, i) => i + 1));
});

Deno.test("lease: self-fences on the local clock before the server could expire it", async () => {
  await using srv = await startNats({ jetstream: true });
  await using nodes = await twoNodes(srv);
  const clock = new ManualClock(1_000_000);
  const lost: [number, number][] = [];
  await using a = manager(nodes.conns[0], "a", clock, {
    marginMs: 200,
    onLost: (s, e) => lost.push([s, e]),
  });
  await using b = manager(nodes.conns[1], "b", systemClock);
  assert.deepEqual(await a.acquire(1), { epoch: 1 });
  assert.deepEqual(a.held(), new Map([[1, { epoch: 1, validUntil: 1_000_800 }]]));
  await clock.advance(700);
  assert.equal(await a.renew(1), true); // valid until 1_000_700 + 800 now
  await clock.advance(799);
  assert.deepEqual(lost, []);
  assert.ok(a.isHeld(1));
  await clock.advance(1); // local validity over: the timer fences without asking the server
  assert.deepEqual(lost, [[1, 1]]);
  assert.ok(!a.isHeld(1));
  assert.deepEqual(a.held(), new Map());
  assert.equal(await a.renew(1), false);
  assert.deepEqual(lost, [[1, 1]]);
  // the server still holds a's lease until its own TTL runs out (a's last write + 1 s)
  assert.deepEqual(await b.owner(1), { node: "a", epoch: 1 });
  assert.deepEqual(
    await waitFor(() => b.acquire(1), { timeoutMs: 10_000, message: "server-side expiry" }),
    { epoch: 2 },
  );
  // a re-acquires later with a newer epoch
  await b.release(1);
  assert.deepEqual(await a.acquire(1), { epoch: 3 });
});

Deno.test("lease: an existing bucket's TTL wins; a lease bucket without TTL is refused", async () => {
  await using srv = await startNats({ jetstream: true });
  await using nodes = await twoNodes(srv);
  await using a = manager(nodes.conns[0], "a", systemClock);
  await a.open();
  await using late = new LeaseManager({
    nc: nodes.conns[1],
    nodeId: "late",
    leaseMs: 5000,
    clock: new ManualClock(0),
    logger: silentLogger,
  });
  await late.open();
  assert.equal(late.leaseMs, LEASE_MS);
  assert.deepEqual(await late.acquire(2), { epoch: 1 });
  assert.deepEqual(late.held().get(2), { epoch: 1, validUntil: LEASE_MS * 0.8 });

  await new Kvm(nodes.conns[0]).create("no_ttl", { history: 1 });
  await using bad = manager(nodes.conns[0], "x", systemClock, { leaseBucket: "no_ttl" });
  await assert.rejects(() => bad.open(), { name: "LeaseStoreError", message: /has no TTL/ });
  assert.throws(
    () => manager(nodes.conns[0], "y", systemClock, { marginMs: LEASE_MS }),
    RangeError,
  );
});

Deno.test("lease: all() lists every held shard in order; a closed manager refuses work", async () => {
  await using srv = await startNats({ jetstream: true });
  await using nodes = await twoNodes(srv);
  await using a = manager(nodes.conns[0], "a", systemClock);
  const b = manager(nodes.conns[1], "b", systemClock);
  for (const s of [9, 2, 11]) assert.ok(await a.acquire(s));
  assert.ok(await b.acquire(4));
  assert.deepEqual(
    [...(await a.all())],
    [[2, { node: "a", epoch: 1 }], [4, { node: "b", epoch: 1 }], [9, { node: "a", epoch: 1 }], [
      11,
      { node: "a", epoch: 1 },
    ]],
  );
  assert.equal(leaseKey(9), "shard.9");
  await b[Symbol.asyncDispose]();
  assert.ok(!b.isHeld(4), "dispose forgets held leases");
  assert.deepEqual(await a.owner(4), { node: "b", epoch: 1 }, "…without releasing them");
  await assert.rejects(() => b.acquire(1), /closed/);
});
