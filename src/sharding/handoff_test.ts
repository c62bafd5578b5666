import assert from "node:assert/strict";
import {
  holdsLease,
  initialShardState,
  isServing,
  type ShardAction,
  type ShardMessage,
  type ShardMessageType,
  type ShardState,
  transition,
} from "./handoff.ts";
import { assignment, owners } from "./placement.ts";
import { ManualClock } from "../runtime/clock.ts";

/** Applies messages in order; fails the test on the first rejection. */
function run(state: ShardState, ...msgs: ShardMessage[]): { state: ShardState; actions: string[] } {
  const actions: string[] = [];
  for (const m of msgs) {
    const r = transition(state, m);
    assert.ok(r.ok, r.ok ? "" : r.error.message);
    state = r.state;
    actions.push(...r.actions.map((a) => a.type));
  }
  return { state, actions };
}

const ALL_MESSAGES: ShardMessage[] = [
  { type: "Acquire" },
  { type: "Acquired", epoch: 9 },
  { type: "AcquireFailed" },
  { type: "BeginHandOff", reason: "rebalance" },
  { type: "IntakeStopped" },
  { type: "Drained", complete: true },
  { type: "Persisted" },
  { type: "Released" },
  { type: "LeaseLost" },
  { type: "Stopped" },
];

/** Fails to compile when a message type is added without a test case here. */
const MESSAGE_TYPES: Record<ShardMessageType, true> = {
  Acquire: true,
  Acquired: true,
  AcquireFailed: true,
  BeginHandOff: true,
  IntakeStopped: true,
  Drained: true,
  Persisted: true,
  Released: true,
  LeaseLost: true,
  Stopped: true,
};

const handingOff = (step: "stopping_intake" | "draining" | "persisting" | "releasing") =>
  ({ kind: "handing_off", epoch: 3, reason: "rebalance", step }) as const;

/** Every state (handoff steps separately) with the messages it accepts. */
const TABLE: [string, ShardState, ShardMessageType[]][] = [
  ["unowned", { kind: "unowned", lastEpoch: 2 }, ["Acquire", "LeaseLost"]],
  ["acquiring", { kind: "acquiring", lastEpoch: 2 }, ["Acquired", "AcquireFailed"]],
  ["owned", { kind: "owned", epoch: 3 }, ["BeginHandOff", "LeaseLost"]],
  ["stopping_intake", handingOff("stopping_intake"), ["IntakeStopped", "LeaseLost"]],
  ["draining", handingOff("draining"), ["Drained", "LeaseLost"]],
  ["persisting", handingOff("persisting"), ["Persisted", "LeaseLost"]],
  ["releasing", handingOff("releasing"), ["Released", "LeaseLost"]],
  ["fenced", { kind: "fenced", epoch: 3 }, ["Stopped", "LeaseLost", "IntakeStopped"]],
];

Deno.test("handoff: every state accepts exactly its messages and rejects the rest without throwing", () => {
  assert.deepEqual(ALL_MESSAGES.map((m) => m.type).sort(), Object.keys(MESSAGE_TYPES).sort());
  for (const [name, state, accepted] of TABLE) {
    const frozen = structuredClone(state);
    for (const msg of ALL_MESSAGES) {
      const r = transition(state, msg);
      assert.deepEqual(state, frozen, `${name}: ${msg.type} mutated the state`);
      if (accepted.includes(msg.type)) {
        assert.ok(r.ok, `${name} should accept ${msg.type}: ${!r.ok && r.error.message}`);
      } else {
        assert.ok(!r.ok, `${name} should reject ${msg.type}`);
        assert.equal(r.error.code, "invalid_transition");
        assert.equal(r.error.name, "ShardTransitionError");
        assert.equal(r.state, state);
        assert.deepEqual(r.actions, []);
        assert.match(r.error.message, new RegExp(`Cannot apply ${msg.type} to shard in state`));
      }
    }
  }
});

Deno.test("handoff: acquire → owned starts the consumer with the lease's epoch", () => {
  let r = transition(initialShardState(), { type: "Acquire" });
  assert.deepEqual(r, {
    ok: true,
    state: { kind: "acquiring", lastEpoch: 0 },
    actions: [{ type: "acquireLease" }],
  });
  r = transition(r.state, { type: "Acquired", epoch: 1 });
  assert.deepEqual(r, {
    ok: true,
    state: { kind: "owned", epoch: 1 },
    actions: [{ type: "startConsumer", epoch: 1 }],
  });
  assert.ok(isServing(r.state) && holdsLease(r.state));
  // held by someone else: back to unowned, nothing to do
  const failed = run(initialShardState(4), { type: "Acquire" }, { type: "AcquireFailed" });
  assert.deepEqual(failed, { state: { kind: "unowned", lastEpoch: 4 }, actions: ["acquireLease"] });
});

Deno.test("handoff: graceful handoff runs stop intake → drain → persist → release, in that order", () => {
  const actions: ShardAction[] = [];
  let state: ShardState = { kind: "owned", epoch: 5 };
  const states: string[] = [];
  for (
    const m of [
      { type: "BeginHandOff", reason: "leave" },
      { type: "IntakeStopped" },
      { type: "Drained", complete: true },
      { type: "Persisted" },
      { type: "Released" },
    ] as ShardMessage[]
  ) {
    const r = transition(state, m);
    assert.ok(r.ok);
    state = r.state;
    actions.push(...r.actions);
    states.push(state.kind === "handing_off" ? state.step : state.kind);
    if (state.kind === "handing_off") {
      assert.ok(!isServing(state) && holdsLease(state), "no serving, lease kept while handing off");
      assert.equal(state.reason, "leave");
    }
  }
  assert.deepEqual(states, ["stopping_intake", "draining", "persisting", "releasing", "unowned"]);
  assert.deepEqual(actions, [
    { type: "stopIntake" },
    { type: "drain" },
    { type: "persist", epoch: 5 },
    { type: "stopConsumer" },
    { type: "releaseLease", epoch: 5 },
  ]);
  assert.deepEqual(state, { kind: "unowned", lastEpoch: 5 });
});

Deno.test("handoff: a drain that timed out still persists and releases (redelivery covers the rest)", () => {
  const r = run(
    { kind: "owned", epoch: 2 },
    { type: "BeginHandOff", reason: "rebalance" },
    { type: "IntakeStopped" },
    { type: "Drained", complete: false },
  );
  assert.deepEqual(r.state, {
    kind: "handing_off",
    epoch: 2,
    reason: "rebalance",
    step: "persisting",
    drainedAll: false,
  });
  assert.deepEqual(r.actions, ["stopIntake", "drain", "persist"]);
});

Deno.test("handoff: lease lost while owned fences: stop everything, drop twins unpersisted", () => {
  const r = transition({ kind: "owned", epoch: 7 }, { type: "LeaseLost" });
  assert.ok(r.ok);
  assert.deepEqual(r.state, { kind: "fenced", epoch: 7 });
  assert.deepEqual(r.actions.map((a) => a.type), ["stopIntake", "stopConsumer", "dropTwins"]);
  assert.ok(!r.actions.some((a) => a.type === "persist" || a.type === "releaseLease"));
  assert.ok(!isServing(r.state) && !holdsLease(r.state));
  // a second report (self-fence timer and a failed renew) changes nothing
  assert.deepEqual(transition(r.state, { type: "LeaseLost" }), {
    ok: true,
    state: r.state,
    actions: [],
  });
  const done = run(r.state, { type: "IntakeStopped" }, { type: "Stopped" }, { type: "LeaseLost" });
  assert.deepEqual(done, { state: { kind: "unowned", lastEpoch: 7 }, actions: [] });
});

Deno.test("handoff: lease lost during a handoff fences before persisting, is moot once persisted", () => {
  for (const step of ["stopping_intake", "draining", "persisting"] as const) {
    const r = transition(handingOff(step), { type: "LeaseLost" });
    assert.ok(r.ok);
    assert.deepEqual(r.state, { kind: "fenced", epoch: 3 }, step);
    assert.deepEqual(r.actions.map((a) => a.type), ["stopConsumer", "dropTwins"], step);
  }
  // late completions of the aborted handoff are rejected, not applied
  const fenced: ShardState = { kind: "fenced", epoch: 3 };
  for (const type of ["Persisted", "Released"] as const) {
    const r = transition(fenced, { type });
    assert.ok(!r.ok && r.error.code === "invalid_transition");
  }
  // releasing: twins are persisted, the lease going away is what we wanted
  const releasing = handingOff("releasing");
  assert.deepEqual(transition(releasing, { type: "LeaseLost" }), {
    ok: true,
    state: releasing,
    actions: [],
  });
  assert.deepEqual(run(releasing, { type: "Released" }).state, { kind: "unowned", lastEpoch: 3 });
});

Deno.test("handoff: out-of-order and stale messages are rejected with the state unchanged", () => {
  const owned: ShardState = { kind: "owned", epoch: 4 };
  for (const type of ["Drained", "Persisted", "Released", "IntakeStopped"] as const) {
    const msg = (type === "Drained" ? { type, complete: true } : { type }) as ShardMessage;
    const r = transition(owned, msg);
    assert.ok(!r.ok, `${type} before BeginHandOff`);
    assert.equal(r.state, owned);
  }
  // skipping a step
  assert.ok(!transition(handingOff("stopping_intake"), { type: "Drained", complete: true }).ok);
  assert.ok(!transition(handingOff("draining"), { type: "Persisted" }).ok);
  assert.ok(!transition(handingOff("persisting"), { type: "Released" }).ok);
  // a second handoff while one runs, an acquire while owned
  assert.ok(!transition(handingOff("draining"), { type: "BeginHandOff", reason: "leave" }).ok);
  assert.ok(!transition(owned, { type: "Acquire" }).ok);
  // Acquired without asking, or with an epoch not above what this node already had
  assert.ok(!transition(initialShardState(), { type: "Acquired", epoch: 1 }).ok);
  for (const epoch of [3, 2, 0, -1, 1.5, NaN]) {
    const r = transition({ kind: "acquiring", lastEpoch: 3 }, { type: "Acquired", epoch });
    assert.ok(!r.ok, `epoch ${epoch}`);
    assert.equal(r.error.code, "stale_epoch");
    assert.deepEqual(r.state, { kind: "acquiring", lastEpoch: 3 });
  }
});

// ---------------------------------------------------------------------------------------------
// Scenarios: nodes driven by the machine against a fake lease table with expiry, checking
// "at most one node serves a shard" after every single transition.

interface FakeLease {
  node: string;
  epoch: number;
  expiresAt: number;
}

class FakeLeases {
  readonly leases = new Map<number, FakeLease>();
  readonly epochs = new Map<number, number>();
  constructor(readonly clock: ManualClock, readonly ttl: number) {}
  acquire(node: string, shard: number): number | null {
    const l = this.leases.get(shard);
    if (l && l.expiresAt > this.clock.now()) return null;
    const epoch = (this.epochs.get(shard) ?? 0) + 1;
    this.epochs.set(shard, epoch);
    this.leases.set(shard, { node, epoch, expiresAt: this.clock.now() + this.ttl });
    return epoch;
  }
  renew(node: string, shard: number, epoch: number): boolean {
    const l = this.leases.get(shard);
    if (!l || l.node !== node || l.epoch !== epoch || l.expiresAt <= this.clock.now()) return false;
    l.expiresAt = this.clock.now() + this.ttl;
    return true;
  }
  release(node: string, shard: number, epoch: number): void {
    const l = this.leases.get(shard);
    if (l && l.node === node && l.epoch === epoch) this.leases.delete(shard);
  }
}

class SimNode {
  readonly shards = new Map<number, ShardState>();
  readonly persisted: { shard: number; epoch: number }[] = [];
  crashed = false;
  constructor(readonly id: string, readonly store: FakeLeases, readonly world: SimNode[]) {}

  state(shard: number): ShardState {
    return this.shards.get(shard) ?? initialShardState();
  }

  /** Delivers a message and runs the resulting actions to completion, synchronously. */
  send(shard: number, msg: ShardMessage): void {
    const queue: ShardMessage[] = [msg];
    while (queue.length) {
      const m = queue.shift()!;
      const r = transition(this.state(shard), m);
      assert.ok(r.ok, `${this.id}/${shard}: ${!r.ok && r.error.message}`);
      this.shards.set(shard, r.state);
      assertSingleServer(this.world, shard, this.store);
      for (const a of r.actions) {
        const reply = this.#execute(shard, a);
        if (reply) queue.push(reply);
      }
    }
  }

  #execute(shard: number, a: ShardAction): ShardMessage | null {
    switch (a.type) {
      case "acquireLease": {
        const epoch = this.store.acquire(this.id, shard);
        return epoch === null ? { type: "AcquireFailed" } : { type: "Acquired", epoch };
      }
      case "stopIntake":
        return { type: "IntakeStopped" };
      case "drain":
        return { type: "Drained", complete: true };
      case "persist":
        this.persisted.push({ shard, epoch: a.epoch });
        return { type: "Persisted" };
      case "releaseLease":
        this.store.release(this.id, shard, a.epoch);
        return { type: "Released" };
      case "dropTwins":
        return { type: "Stopped" };
      case "startConsumer":
      case "stopConsumer":
        return null;
    }
  }

  /** One round of the placement loop: renew, then acquire / hand off toward `nodes`. */
  tick(nodes: string[], shards: number): void {
    if (this.crashed) return;
    const placed = owners(shards, nodes);
    for (let shard = 0; shard < shards; shard++) {
      const s = this.state(shard);
      if (holdsLease(s) && !this.store.renew(this.id, shard, epochOf(s))) {
        this.send(shard, { type: "LeaseLost" });
        continue;
      }
      const want = placed[shard] === this.id;
      const kind = this.state(shard).kind;
      if (want && kind === "unowned") this.send(shard, { type: "Acquire" });
      if (!want && kind === "owned") {
        this.send(shard, { type: "BeginHandOff", reason: "rebalance" });
      }
    }
  }
}

function epochOf(s: ShardState): number {
  return "epoch" in s ? s.epoch : s.lastEpoch;
}

function assertSingleServer(world: SimNode[], shard: number, store: FakeLeases): void {
  const serving = world.filter((n) => isServing(n.state(shard)) && !n.crashed);
  assert.ok(serving.length <= 1, `shard ${shard} served by ${serving.map((n) => n.id)}`);
  for (const n of serving) {
    const lease = store.leases.get(shard);
    assert.equal(lease?.node, n.id, `shard ${shard} served by ${n.id} without its lease`);
    assert.equal(lease?.epoch, epochOf(n.state(shard)));
  }
}

const SHARDS = 16;
const ownedBy = (n: SimNode) =>
  [...n.shards].filter(([, s]) => s.kind === "owned").map(([k]) => k).sort((a, b) => a - b);

Deno.test("handoff scenario: a join rebalances — old owners hand off, the new node acquires with epoch+1", () => {
  const clock = new ManualClock(0);
  const store = new FakeLeases(clock, 3000);
  const world: SimNode[] = [];
  const a = new SimNode("a", store, world), b = new SimNode("b", store, world);
  world.push(a, b);
  for (const n of world) n.tick(["a", "b"], SHARDS);
  for (const n of world) n.tick(["a", "b"], SHARDS); // shards a could not take yet
  const two = assignment(SHARDS, ["a", "b"]);
  assert.deepEqual(ownedBy(a), two.get("a"));
  assert.deepEqual(ownedBy(b), two.get("b"));

  const c = new SimNode("c", store, world);
  world.push(c);
  const three = ["a", "b", "c"];
  c.tick(three, SHARDS); // c sees its shards still leased: AcquireFailed, stays unowned
  assert.deepEqual(ownedBy(c), []);
  for (const s of assignment(SHARDS, three).get("c")!) assert.equal(c.state(s).kind, "unowned");
  a.tick(three, SHARDS); // a and b hand off what c should own: persist, then release
  b.tick(three, SHARDS);
  c.tick(three, SHARDS); // now free: c acquires with the next epoch
  // bounded load: a shard may also move between a and b (here 15, b → a): a takes it next round
  for (const n of world) n.tick(three, SHARDS);
  const want = assignment(SHARDS, three);
  for (const n of world) assert.deepEqual(ownedBy(n), want.get(n.id), n.id);
  for (const s of want.get("c")!) {
    assert.deepEqual(c.state(s), { kind: "owned", epoch: 2 });
    const old = two.get("a")!.includes(s) ? a : b;
    assert.deepEqual(old.state(s), { kind: "unowned", lastEpoch: 1 });
    assert.deepEqual(old.persisted.filter((p) => p.shard === s), [{ shard: s, epoch: 1 }]);
  }
});

Deno.test("handoff scenario: graceful leave hands every shard over, persisted, no lease waits", () => {
  const clock = new ManualClock(0);
  const store = new FakeLeases(clock, 3000);
  const world: SimNode[] = [];
  const a = new SimNode("a", store, world), b = new SimNode("b", store, world);
  world.push(a, b);
  for (let i = 0; i < 2; i++) for (const n of world) n.tick(["a", "b"], SHARDS);
  const hadA = ownedBy(a);
  assert.ok(hadA.length > 0);
  for (const s of hadA) a.send(s, { type: "BeginHandOff", reason: "leave" });
  assert.deepEqual(ownedBy(a), []);
  assert.deepEqual(a.persisted.map((p) => p.shard), hadA);
  b.tick(["b"], SHARDS); // right away: the leases were released, not left to expire
  assert.equal(ownedBy(b).length, SHARDS);
  for (const s of hadA) assert.deepEqual(b.state(s), { kind: "owned", epoch: 2 });
});

Deno.test("handoff scenario: crash → lease expiry → takeover with epoch+1; the old owner wakes fenced", async () => {
  const clock = new ManualClock(0);
  const store = new FakeLeases(clock, 3000);
  const world: SimNode[] = [];
  const a = new SimNode("a", store, world), b = new SimNode("b", store, world);
  world.push(a, b);
  a.tick(["a"], 1);
  assert.deepEqual(a.state(0), { kind: "owned", epoch: 1 });
  a.crashed = true; // stops renewing (e.g. a long GC pause); membership drops it
  b.tick(["b"], 1);
  assert.deepEqual(b.state(0), { kind: "unowned", lastEpoch: 0 }, "lease still valid: no takeover");
  await clock.advance(3000);
  b.tick(["b"], 1);
  assert.deepEqual(b.state(0), { kind: "owned", epoch: 2 });
  a.crashed = false; // a wakes up and renews: lost, fenced, twins dropped unpersisted
  a.tick(["a", "b"], 1);
  assert.deepEqual(a.state(0), { kind: "unowned", lastEpoch: 1 });
  assert.deepEqual(a.persisted, []);
  assert.deepEqual(b.state(0), { kind: "owned", epoch: 2 });
});

Deno.test("handoff scenario: lease lost mid-handoff aborts it; the takeover proceeds", async () => {
  const clock = new ManualClock(0);
  const store = new FakeLeases(clock, 3000);
  const world: SimNode[] = [];
  const a = new SimNode("a", store, world), b = new SimNode("b", store, world);
  world.push(a, b);
  a.tick(["a"], 1);
  // drive a's handoff by hand and stall it in draining (the drain takes too long)
  let r = transition(a.state(0), { type: "BeginHandOff", reason: "rebalance" });
  r = r.ok ? transition(r.state, { type: "IntakeStopped" }) : r;
  assert.ok(r.ok);
  a.shards.set(0, r.state);
  await clock.advance(3001); // no renewals meanwhile: the lease expires
  b.tick(["b"], 1);
  assert.deepEqual(b.state(0), { kind: "owned", epoch: 2 });
  a.tick(["b"], 1); // the renew fails → LeaseLost → fenced → Stopped
  assert.deepEqual(a.state(0), { kind: "unowned", lastEpoch: 1 });
  assert.deepEqual(a.persisted, [], "a fenced owner never persists over the new owner");
  // the stalled drain finally reports: rejected, nothing happens
  const late = transition(a.state(0), { type: "Drained", complete: true });
  assert.ok(!late.ok);
});
