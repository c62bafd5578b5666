import assert from "node:assert/strict";
import type { TwinEffect, TwinRecord } from "../../actors/twin.ts";
import { emptyTwin } from "../../actors/twin.ts";
import { keepUnwritten, MAX_UNWRITTEN, unwrittenOf } from "./unwritten_points.ts";

const rec = (): TwinRecord => emptyTwin("p", 0);
const telemetry: TwinEffect = { type: "point", tags: { device: "p" }, fields: { t: 1 }, ts: 5 };
const alarm: TwinEffect = {
  type: "point",
  measurement: "alarms",
  tags: { device: "p", rule: "hot" },
  fields: { state: "active" },
  ts: 5,
  unique: true,
};
const event: TwinEffect = { type: "desired", desired: {} };

Deno.test("unwritten points: a message's rule points are kept, not its own telemetry point", () => {
  const r = keepUnwritten(rec(), undefined, 7, [telemetry, alarm, event], () => true);
  assert.deepEqual(r.unwritten, [{ seq: 7, points: [alarm] }]);
  assert.deepEqual(unwrittenOf(r, 7), [alarm]);
  assert.deepEqual(unwrittenOf(r, 8), []);
});

Deno.test("unwritten points: those of retired entries go at the next device message", () => {
  const a = keepUnwritten(rec(), undefined, 7, [alarm], () => true);
  const b = keepUnwritten(a, a.unwritten, 8, [alarm], () => true);
  assert.deepEqual(b.unwritten?.map((u) => u.seq), [7, 8]);
  const c = keepUnwritten(b, b.unwritten, 9, [telemetry], (s) => s === 8 || s === 9);
  assert.deepEqual(c.unwritten?.map((u) => u.seq), [8]);
  const d = keepUnwritten(c, c.unwritten, 10, [telemetry], (s) => s === 10);
  assert.equal("unwritten" in d, false, "none left: the field goes");
  const plain = rec();
  assert.equal(keepUnwritten(plain, undefined, 11, [telemetry], () => true), plain);
});

Deno.test("unwritten points: at most MAX_UNWRITTEN messages kept, the oldest dropped", () => {
  let r = rec();
  for (let s = 1; s <= MAX_UNWRITTEN + 3; s++) {
    r = keepUnwritten(r, r.unwritten, s, [alarm], () => true);
  }
  assert.equal(r.unwritten?.length, MAX_UNWRITTEN);
  assert.equal(r.unwritten?.[0].seq, 4);
});
