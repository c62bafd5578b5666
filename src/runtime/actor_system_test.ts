import assert from "node:assert/strict";
import { ActorSystem, type Behavior } from "./actor_system.ts";
import { ManualClock, settle } from "./clock.ts";
import { createLogger, silentLogger } from "../obs/log.ts";
import { MailboxFullError } from "../errors.ts";

type Msg = { add: number } | { boom: true } | { slow: Promise<void> };

function counterBehavior(persisted: Map<string, number>) {
  const calls = { load: 0, passivate: 0, concurrent: 0, maxConcurrent: 0 };
  const b: Behavior<number, Msg, number> = {
    load: (id) => {
      calls.load++;
      return Promise.resolve(persisted.get(id) ?? 0);
    },
    async receive(_id, s, m) {
      calls.concurrent++;
      calls.maxConcurrent = Math.max(calls.maxConcurrent, calls.concurrent);
      try {
        if ("boom" in m) throw new Error("boom");
        if ("slow" in m) await m.slow;
        const n = s + ("add" in m ? m.add : 0);
        return { state: n, reply: n };
      } finally {
        calls.concurrent--;
      }
    },
    passivate: (id, s) => {
      calls.passivate++;
      persisted.set(id, s);
      return Promise.resolve();
    },
  };
  return { b, calls };
}

Deno.test("one message at a time per actor, in order; activation loads the snapshot", async () => {
  const persisted = new Map([["a", 100]]);
  const { b, calls } = counterBehavior(persisted);
  const clock = new ManualClock();
  const sys = new ActorSystem({ behavior: b, clock, logger: silentLogger });
  const replies = await Promise.all([1, 2, 3].map((n) => sys.send("a", { add: n })));
  assert.deepEqual(replies, [101, 103, 106]);
  assert.equal(calls.load, 1);
  assert.equal(calls.maxConcurrent, 1);
  await sys.close();
});

Deno.test("many actors run concurrently", async () => {
  const { b, calls } = counterBehavior(new Map());
  const sys = new ActorSystem({ behavior: b, clock: new ManualClock(), logger: silentLogger });
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const p = ["a", "b", "c"].map((id) => sys.send(id, { slow: gate }));
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(calls.maxConcurrent, 3);
  release();
  await Promise.all(p);
  await sys.close();
});

Deno.test("passivation after the idle time persists and frees memory", async () => {
  const persisted = new Map<string, number>();
  const { b, calls } = counterBehavior(persisted);
  const clock = new ManualClock();
  let passivated = 0;
  const sys = new ActorSystem({
    behavior: b,
    clock,
    logger: silentLogger,
    idleMs: 1000,
    hooks: { passivated: () => passivated++ },
  });
  await sys.send("a", { add: 5 });
  await clock.advance(500);
  assert.equal(sys.size, 1);
  await clock.advance(1000);
  assert.equal(sys.size, 0);
  assert.equal(passivated, 1);
  assert.equal(persisted.get("a"), 5);
  assert.equal(await sys.send("a", { add: 1 }), 6); // reactivated from the snapshot
  assert.equal(calls.load, 2);
  await sys.close();
});

Deno.test("supervision: a throwing handler is counted, the actor restarts from persisted state", async () => {
  const persisted = new Map([["a", 10]]);
  const { b } = counterBehavior(persisted);
  let failed = 0;
  const sys = new ActorSystem({
    behavior: b,
    clock: new ManualClock(),
    logger: silentLogger,
    hooks: { failed: () => failed++ },
  });
  assert.equal(await sys.send("a", { add: 1 }), 11);
  await assert.rejects(sys.send("a", { boom: true }), /boom/);
  assert.equal(failed, 1);
  assert.equal(await sys.send("a", { add: 1 }), 11); // back to persisted 10, plus 1
  await sys.close();
});

Deno.test("bounded mailbox: full -> MailboxFullError, or wait for room in order", async () => {
  const { b } = counterBehavior(new Map());
  let full = 0;
  const sys = new ActorSystem({
    behavior: b,
    clock: new ManualClock(),
    logger: silentLogger,
    mailboxSize: 2,
    hooks: { mailboxFull: () => full++ },
  });
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const first = sys.send("a", { slow: gate });
  await new Promise((r) => setTimeout(r, 0)); // first is running, mailbox empty
  const q = [sys.send("a", { add: 1 }), sys.send("a", { add: 2 })];
  await assert.rejects(sys.send("a", { add: 100 }), MailboxFullError);
  assert.equal(full, 1);
  const waited = sys.send("a", { add: 3 }, { wait: true });
  release();
  assert.deepEqual(await Promise.all([first, ...q, waited]), [0, 1, 3, 6]);
  await sys.close();
});

Deno.test("passivateWhere persists and drops only the matching actors", async () => {
  const persisted = new Map<string, number>();
  const { b } = counterBehavior(persisted);
  const sys = new ActorSystem({ behavior: b, clock: new ManualClock(), logger: silentLogger });
  await Promise.all(["s1-a", "s1-b", "s2-a"].map((id) => sys.send(id, { add: 2 })));
  assert.equal(await sys.passivateWhere((id) => id.startsWith("s1-")), 2);
  assert.equal(sys.size, 1);
  assert.deepEqual([...persisted.keys()].sort(), ["s1-a", "s1-b"]);
  await sys.close();
});

Deno.test("passivateWhere waits for the mailboxes to empty; busy after 10 s: a warning, then passivated", async () => {
  const persisted = new Map<string, number>();
  const { b, calls } = counterBehavior(persisted);
  const clock = new ManualClock();
  const lines: string[] = [];
  const logger = createLogger("warn", "test", (l) => lines.push(l));
  const sys = new ActorSystem({ behavior: b, clock, logger });
  let release!: () => void;
  const slow = new Promise<void>((r) => (release = r));
  await sys.send("a", { add: 1 });
  const busy = sys.send("a", { slow });
  let passivated = false;
  const done = sys.passivateWhere((id) => id === "a").then(() => (passivated = true));
  await settle();
  assert.equal(passivated, false, "waits while the mailbox runs");
  release();
  await busy;
  await done;
  assert.equal(persisted.get("a"), 1);
  assert.equal(lines.length, 0);

  await sys.send("b", { add: 2 });
  const stuck = sys.send("b", { slow: new Promise<void>(() => {}) });
  void stuck.catch(() => {});
  const late = sys.passivateWhere((id) => id === "b");
  await clock.advance(9_999);
  assert.equal(calls.passivate, 1);
  await clock.advance(1);
  await late;
  assert.equal(calls.passivate, 2, "passivated anyway");
  assert.equal(lines.length, 1);
  assert.match(lines[0], /actors still busy after 10 s/);
  assert.equal(JSON.parse(lines[0]).actors, 1);
});
