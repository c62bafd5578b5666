/**
 * Rule timers on a manual clock: a twin is ticked once its deadline passed (checked every
 * `everyMs`), a quarantined twin waits for the end of its quarantine, a failed tick is tried
 * again 5 s later, twins another node owns stay armed, stored twins are armed at start.
 */
import assert from "node:assert/strict";
import { RuleTimers, type RuleTimersOptions } from "./rule_timers.ts";
import { ManualClock } from "./clock.ts";
import { silentLogger } from "../obs/log.ts";
import { emptyTwin, type TwinRecord } from "../../actors/twin.ts";
import { newCommand } from "../../actors/commands.ts";

/** Twin `id` with one open command expiring at `expiresAt`. */
function withCommand(id: string, expiresAt: number): TwinRecord {
  const command = newCommand({
    name: "reboot",
    args: {},
    mode: "async",
    source: "test",
    now: expiresAt - 1_000,
    ttlMs: 1_000,
  });
  const r = emptyTwin(id, 0);
  return { ...r, state: { ...r.state, version: 1 }, commands: [command] };
}

function setup(extra: Partial<RuleTimersOptions> = {}) {
  const clock = new ManualClock(10_000);
  const ticked: string[] = [];
  const timers = new RuleTimers({
    clock,
    logger: silentLogger,
    everyMs: 100,
    tick: (id) => (ticked.push(id), Promise.resolve(null)),
    stored: async function* () {},
    resident: () => [],
    peek: () => undefined,
    ...extra,
  });
  return { clock, timers, ticked };
}

Deno.test("rule timers: a twin is ticked once its deadline passed, then disarmed", async () => {
  const { clock, timers, ticked } = setup();
  timers.arm("a", undefined, withCommand("a", 10_250));
  timers.arm("b", undefined, withCommand("b", 20_000));
  assert.equal(timers.size, 2);
  assert.equal(timers.at("a"), 10_250);
  await clock.advance(200);
  assert.deepEqual(ticked, []);
  await clock.advance(100);
  assert.deepEqual(ticked, ["a"]);
  assert.equal(timers.at("a"), undefined);
  await clock.advance(1_000);
  assert.deepEqual(ticked, ["a"], "ticked once");
  timers.arm("b", undefined, emptyTwin("b", 0)); // nothing left to wait for
  assert.equal(timers.size, 0);
  timers.close();
});

Deno.test("rule timers: a quarantined twin waits for its end; a failed tick is retried 5 s later", async () => {
  let calls = 0;
  const { clock, timers } = setup({
    tick: (id) => {
      calls++;
      if (id === "q") return Promise.resolve(50_000);
      return Promise.reject(new Error("twin busy"));
    },
  });
  timers.arm("q", undefined, withCommand("q", 10_000));
  timers.arm("f", undefined, withCommand("f", 10_000));
  await clock.advance(100);
  assert.equal(calls, 2);
  assert.equal(timers.at("q"), 50_000);
  assert.equal(timers.at("f"), 10_100 + 5_000);
  timers.close();
});

Deno.test("rule timers: twins another node owns stay armed; disarm forgets them", async () => {
  const { clock, timers, ticked } = setup({ owns: (id) => id !== "theirs" });
  timers.arm("theirs", undefined, withCommand("theirs", 10_000));
  await clock.advance(500);
  assert.deepEqual(ticked, []);
  assert.equal(timers.at("theirs"), 10_000);
  timers.disarm((id) => id === "theirs");
  assert.equal(timers.size, 0);
  timers.close();
});

Deno.test("rule timers: stored twins with open commands are armed; a profile change ticks soon", async () => {
  const stored = [withCommand("s1", 90_000), emptyTwin("s2", 0), withCommand("s3", 80_000)];
  const { clock, timers, ticked } = setup({
    stored: async function* () {
      yield* stored;
    },
  });
  assert.equal(await timers.armStored((id) => id !== "s3"), 1);
  assert.equal(timers.at("s1"), 90_000);
  const soon = await timers.reprofile((s) => s.id === "s2");
  assert.equal(soon, 1, "s2 uses the profile");
  await clock.advance(100);
  assert.deepEqual(ticked.sort(), ["s1", "s2"], "armed twins are reconciled too");
  timers.close();
  await clock.advance(1_000);
  assert.equal(ticked.length, 2, "closed: no more ticks");
});
