import assert from "node:assert/strict";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import {
  InvalidNodeIdError,
  Membership,
  type MembershipChange,
  type MembershipOptions,
  type NodeInfo,
} from "./membership.ts";
import { type Clock, ManualClock, systemClock } from "../runtime/clock.ts";
import { silentLogger } from "../obs/log.ts";
import { startNats, waitFor } from "../../tests/harness/mod.ts";

const TTL_MS = 1000;
const HEARTBEAT_MS = 200;

const info = (id: string): NodeInfo => ({
  id,
  http: `http://${id}:8080`,
  mqtt: `mqtt://${id}:1883`,
  startedAt: 1_700_000_000_000,
});

function member(
  nc: NatsConnection,
  id: string,
  clock: Clock = systemClock,
  extra: Partial<MembershipOptions> = {},
): Membership {
  return new Membership({
    nc,
    info: info(id),
    ttlMs: TTL_MS,
    heartbeatMs: HEARTBEAT_MS,
    clock,
    logger: silentLogger,
    ...extra,
  });
}

const ids = (nodes: NodeInfo[]) => nodes.map((n) => n.id);

Deno.test("membership: both members seen; a member that stops heartbeating disappears within the TTL", async () => {
  await using srv = await startNats({ jetstream: true });
  const nca = await connect({ servers: srv.url });
  const ncb = await connect({ servers: srv.url });
  try {
    await using a = member(nca, "node-a");
    const b = member(ncb, "node-b");
    await a.start();
    await b.start();
    assert.deepEqual(await a.liveNodes(), [info("node-a"), info("node-b")]);
    assert.deepEqual(ids(await b.liveNodes()), ["node-a", "node-b"]);

    const changes: MembershipChange[] = [];
    await using w = await a.watch((c) => changes.push(c));
    assert.deepEqual(changes, [{
      nodes: [info("node-a"), info("node-b")],
      joined: ["node-a", "node-b"],
      left: [],
      changed: [],
    }]);

    await b[Symbol.asyncDispose](); // stops heartbeating, leaves its entry to expire
    const stoppedAt = Date.now();
    await waitFor(async () => ids(await a.liveNodes()).join() === "node-a", {
      timeoutMs: TTL_MS * 5,
      message: "node-b expires",
    });
    const gone = Date.now() - stoppedAt;
    assert.ok(gone >= TTL_MS - 2 * HEARTBEAT_MS, `gone after ${gone} ms: before the TTL`);
    await waitFor(() => changes.length === 2, { timeoutMs: TTL_MS * 5, message: "watch sees it" });
    assert.deepEqual(changes[1], {
      nodes: [info("node-a")],
      joined: [],
      left: ["node-b"],
      changed: [],
    });
    assert.deepEqual(ids(w.nodes), ["node-a"]);
    // a kept beating all along: still live well past its TTL
    assert.deepEqual(ids(await a.liveNodes()), ["node-a"]);
  } finally {
    await nca.close();
    await ncb.close();
  }
});

Deno.test("membership: watch reports joins, info changes and leaves at once, not heartbeats", async () => {
  await using srv = await startNats({ jetstream: true });
  const nc = await connect({ servers: srv.url });
  try {
    await using a = member(nc, "a");
    await a.start();
    const changes: MembershipChange[] = [];
    // no polling within the test: every change must come from the KV watch
    await using _w = await a.watch((c) => changes.push(c), { pollMs: 600_000 });
    await using c = member(nc, "c");
    await c.start();
    await waitFor(() => changes.length === 2, { message: "join seen" });
    assert.deepEqual(changes[1].joined, ["c"]);
    assert.deepEqual(ids(changes[1].nodes), ["a", "c"]);

    assert.equal(await c.announce({ http: "http://c:9090" }), true);
    await waitFor(() => changes.length === 3, { message: "change seen" });
    assert.deepEqual(changes[2].changed, ["c"]);
    assert.equal(changes[2].nodes[1].http, "http://c:9090");

    await c.leave();
    await waitFor(() => changes.length === 4, { message: "leave seen" });
    assert.deepEqual(changes[3], {
      nodes: [info("a")],
      joined: [],
      left: ["c"],
      changed: [],
    });
    assert.deepEqual(ids(await a.liveNodes()), ["a"]);
    // several heartbeats later: no spurious changes
    const beats = await a.beat() && await a.beat() && await a.beat();
    assert.ok(beats);
    assert.equal(changes.length, 4);
  } finally {
    await nc.close();
  }
});

Deno.test("membership: heartbeats run on the injected clock", async () => {
  await using srv = await startNats({ jetstream: true });
  const nc = await connect({ servers: srv.url });
  try {
    const clock = new ManualClock(0);
    await using m = member(nc, "m", clock, { bucket: "nodes_manual" });
    await m.start();
    const kv = await new Kvm(nc).open("nodes_manual");
    const rev = (await kv.get("m"))!.revision;
    assert.equal((await kv.get("m"))!.revision, rev, "no beat without the clock moving");
    await clock.advance(HEARTBEAT_MS);
    await waitFor(async () => (await kv.get("m"))!.revision > rev, { message: "a heartbeat" });
  } finally {
    await nc.close();
  }
});

Deno.test("membership: invalid ids and timings are refused; an existing bucket's TTL wins", async () => {
  await using srv = await startNats({ jetstream: true });
  const nc = await connect({ servers: srv.url });
  try {
    for (const id of ["has space", "a:b", "", ".lead", "trail.", "a..b", "*", ">"]) {
      assert.throws(() => member(nc, id), InvalidNodeIdError, id);
    }
    assert.throws(() => member(nc, "x", systemClock, { heartbeatMs: TTL_MS }), RangeError);
    await using first = member(nc, "first");
    await first.start();
    await using second = member(nc, "second", systemClock, { ttlMs: 6000 });
    await second.start();
    assert.equal(second.ttlMs, TTL_MS);
  } finally {
    await nc.close();
  }
});
