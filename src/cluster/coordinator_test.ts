import assert from "node:assert/strict";
import { Coordinator, type Lease, type LeasePort, type ShardRuntime } from "./coordinator.ts";
import { ManualClock } from "../runtime/clock.ts";
import { silentLogger } from "../obs/log.ts";

/** Leases in memory with the same rules as the KV store: one holder, epochs only grow. */
class FakeLeases {
  held = new Map<number, Lease>();
  epochs = new Map<number, number>();
  port(node: string): LeasePort {
    return {
      acquire: (shard) => {
        if (this.held.has(shard)) return Promise.resolve(null);
        const epoch = (this.epochs.get(shard) ?? 0) + 1;
        this.epochs.set(shard, epoch);
        this.held.set(shard, { node, epoch });
        return Promise.resolve({ epoch });
      },
      renew: (shard) => Promise.resolve(this.held.get(shard)?.node === node),
      release: (shard) => {
        if (this.held.get(shard)?.node === node) this.held.delete(shard);
        return Promise.resolve();
      },
      all: () => Promise.resolve(new Map(this.held)),
      valid: (shard) => this.held.get(shard)?.node === node,
    };
  }
}

function runtime(log: string[], node: string): ShardRuntime {
  const step = (what: string) => (shard: number) => {
    log.push(`${node}:${what}:${shard}`);
    return Promise.resolve();
  };
  return {
    start: (shard, epoch) => step(`start@${epoch}`)(shard),
    stopIntake: step("stop"),
    drain: (shard) => step("drain")(shard).then(() => true),
    persist: step("persist"),
    fence: step("fence"),
  };
}

/** Shard s on the (s mod N)-th node in id order. */
const placed = (shards: number, nodes: readonly string[]) =>
  Array.from(
    { length: nodes.length > 0 ? shards : 0 },
    (_, s) => [...nodes].sort()[s % nodes.length],
  );

function setup() {
  const leases = new FakeLeases();
  const live = new Set<string>();
  const log: string[] = [];
  const clock = new ManualClock();
  const make = (id: string) => {
    live.add(id);
    return new Coordinator({
      nodeId: id,
      shards: 4,
      leases: leases.port(id),
      members: { liveNodes: () => Promise.resolve([...live]) },
      runtime: runtime(log, id),
      owners: placed,
      clock,
      logger: silentLogger,
    });
  };
  return { leases, live, log, make };
}

function owners(cs: Coordinator[]): Map<number, string[]> {
  const m = new Map<number, string[]>();
  for (const c of cs) {
    for (const [shard, s] of c.states) {
      if (s.state === "owned") m.set(shard, [...(m.get(shard) ?? []), c.o.nodeId]);
    }
  }
  return m;
}

Deno.test("a lone node takes every shard with epoch 1 and is settled", async () => {
  const { make, log } = setup();
  const a = make("a");
  await a.tick();
  assert.deepEqual([...a.states.keys()].sort(), [0, 1, 2, 3]);
  assert.ok(a.settled);
  assert.ok(log.every((l) => l.includes("start@1")));
});

Deno.test("join: the protocol runs stop -> drain -> persist -> release, then the new node acquires with epoch+1; never two owners", async () => {
  const { make, log, leases } = setup();
  const a = make("a");
  await a.tick();
  const b = make("b");
  for (let i = 0; i < 3; i++) {
    await Promise.all([a.tick(), b.tick()]);
    for (const [shard, os] of owners([a, b])) assert.equal(os.length, 1, `shard ${shard}: ${os}`);
  }
  assert.deepEqual([...a.states.keys()].sort(), [0, 2]);
  assert.deepEqual([...b.states.keys()].sort(), [1, 3]);
  const moved = log.filter((l) => l.startsWith("a:") && l.endsWith(":1"));
  assert.deepEqual(moved, ["a:start@1:1", "a:stop:1", "a:drain:1", "a:persist:1"]);
  assert.ok(log.includes("b:start@2:1"));
  assert.equal(leases.held.get(1)?.epoch, 2);
  assert.ok(a.settled && b.settled);
});

Deno.test("graceful leave hands off everything; crash = lease expiry, survivors take over with a higher epoch", async () => {
  const { make, live, leases, log } = setup();
  const a = make("a");
  const b = make("b");
  await Promise.all([a.tick(), b.tick()]);
  await Promise.all([a.tick(), b.tick()]);
  live.delete("b");
  await b.leave();
  assert.equal(b.states.size, 0);
  await a.tick();
  assert.deepEqual([...a.states.keys()].sort(), [0, 1, 2, 3]);
  // a "crashes": its leases expire on the server and b (back) takes over
  live.delete("a");
  a.stop();
  leases.held.clear();
  const c = make("c");
  await c.tick();
  assert.deepEqual([...c.states.keys()].sort(), [0, 1, 2, 3]);
  assert.ok([...c.states.values()].every((s) => s.epoch >= 2));
  // a wakes up (a partition healed): its renewals fail and it fences instead of writing
  await a.tick();
  assert.equal(a.states.size, 0);
  assert.equal(log.filter((l) => l.startsWith("a:fence")).length, 4);
});

Deno.test("a write asks the lease: one that ran out on the local clock fences the shard at once (a paused node resumed)", async () => {
  const { make, leases, log } = setup();
  const a = make("a");
  await a.tick();
  assert.ok(a.mayPersist(2));
  // the lease ran out while a was paused; the renewal timer has not fired yet
  leases.held.delete(2);
  assert.equal(a.mayPersist(2), false);
  assert.equal(a.states.get(2)?.state, "fenced");
  assert.equal(a.mayPersist(2), false);
  await a.tick(); // the round finds the fence done; the lease is free: epoch 2
  assert.ok(log.includes("a:fence:2"));
  assert.equal(log.filter((l) => l === "a:fence:2").length, 1);
  assert.equal(a.states.get(2)?.epoch, 2);
  assert.ok(a.mayPersist(2));
});

Deno.test("fenceAll (NATS connection lost) fences every held shard; the next round takes them again with new epochs", async () => {
  const { make, leases, log } = setup();
  const a = make("a");
  await a.tick();
  await a.fenceAll();
  assert.equal(log.filter((l) => l.startsWith("a:fence")).length, 4);
  assert.ok([0, 1, 2, 3].every((s) => !a.mayPersist(s)));
  leases.held.clear(); // the real store takes its own stale lease back at once (kv_leases_test)
  await a.tick();
  assert.ok([...a.states.values()].every((s) => s.state === "owned" && s.epoch === 2));
});

Deno.test("epochOf gives the epoch a snapshot carries while the shard may be persisted; staleEpoch (a newer owner's snapshot found) fences that epoch only", async () => {
  const { make, leases, log } = setup();
  const a = make("a");
  await a.tick();
  assert.equal(a.epochOf(1), 1);
  a.staleEpoch(1, 0); // an epoch the shard no longer has here: nothing happens
  assert.equal(a.states.get(1)?.state, "owned");
  a.staleEpoch(1, 1);
  assert.equal(a.states.get(1)?.state, "fenced", "fenced before anything else runs");
  assert.equal(a.epochOf(1), undefined);
  await a.tick();
  assert.equal(log.filter((l) => l === "a:fence:1").length, 1);
  assert.equal(a.epochOf(3), 1);
  leases.held.delete(3); // the lease ran out on the local clock
  assert.equal(a.epochOf(3), undefined);
  assert.equal(a.states.get(3)?.state, "fenced");
});

Deno.test("a shard start that fails after the lease ran out (requests timed out on resume from a pause) fences the shard, no handoff", async () => {
  const { leases } = setup();
  const log: string[] = [];
  const rt = runtime(log, "a");
  const a = new Coordinator({
    nodeId: "a",
    shards: 2,
    leases: leases.port("a"),
    members: { liveNodes: () => Promise.resolve(["a"]) },
    runtime: {
      ...rt,
      start: (shard) => {
        if (shard === 0) return rt.start(shard, 1);
        leases.held.delete(shard); // paused past the lease while starting
        return Promise.reject(new Error("timeout"));
      },
    },
    owners: placed,
    clock: new ManualClock(),
    logger: silentLogger,
  });
  await a.tick();
  assert.equal(a.states.get(0)?.state, "owned");
  assert.equal(a.states.has(1), false, "fenced, then unowned");
  // the fence's steps (intake stopped, twins dropped), not a handoff's (drain, persist)
  assert.deepEqual(log.filter((l) => l.endsWith(":1")), ["a:stop:1", "a:fence:1"]);
});
