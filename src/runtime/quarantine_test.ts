import assert from "node:assert/strict";
import { pushBounded, quarantineView, retryDelay, setBounded, unstorable } from "./quarantine.ts";
import { emptyTwin } from "../../actors/twin.ts";
import { TwinmillError } from "../errors.ts";

Deno.test("retry delay: 200 ms doubling, capped at 5 s", () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 50].map(retryDelay), [200, 400, 800, 1600, 3200, 5000, 5000]);
});

Deno.test("unstorable: the record's own fault (serialization, too large), not the store's", () => {
  const rec = emptyTwin("x", 0);
  assert.equal(unstorable(rec, new Error("disk unavailable")), false);
  assert.equal(unstorable(rec, new RangeError("Maximum call stack size exceeded")), true);
  assert.equal(unstorable(rec, new TwinmillError("snapshot_too_large", 413, "too large")), true);
  const cyclic = emptyTwin("y", 0);
  const desired: Record<string, unknown> = {};
  desired.self = desired;
  cyclic.state.desired = desired;
  assert.equal(unstorable(cyclic, new Error("whatever the store said")), true);
});

Deno.test("quarantine view: active while it lasts, without the host's bookkeeping", () => {
  const q = {
    since: 0,
    until: 100,
    reason: "r",
    droppedVersion: 3,
    droppedMessages: 1,
    reset: true,
  };
  assert.deepEqual(quarantineView(q, 50), {
    since: 0,
    until: 100,
    reason: "r",
    droppedVersion: 3,
    droppedMessages: 1,
    active: true,
  });
  assert.equal(quarantineView(q, 100)?.active, false);
  assert.equal("reset" in quarantineView(q, 0)!, false);
  assert.equal(quarantineView(undefined, 0), null);
});

Deno.test("bounded maps: oldest key forgotten first, lists keep their last items", () => {
  const m = new Map<string, number>();
  for (const k of ["a", "b", "c"]) setBounded(m, k, 1, 2);
  assert.deepEqual([...m.keys()], ["b", "c"]);
  const l = new Map<string, number[]>();
  for (let i = 0; i < 5; i++) pushBounded(l, "t", i, 3, 10);
  assert.deepEqual(l.get("t"), [2, 3, 4]);
});
