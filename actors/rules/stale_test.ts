import assert from "node:assert/strict";
import { compile, trans, Twin } from "./testing.ts";

Deno.test("stale: raised by tick after `seconds` without telemetry, cleared by the next", () => {
  const t = new Twin(compile({ id: "quiet", kind: "stale", seconds: 30, severity: "warning" }));
  t.msg(0, { temp: 1 });
  assert.equal(t.deadline(), 30);
  t.msg(10, { rpm: 1 }); // any telemetry counts
  assert.equal(t.deadline(), 40);
  assert.deepEqual(trans(t.tick(39)), []);
  const out = t.tick(40);
  assert.deepEqual(out.transitions, [
    { rule: "quiet", kind: "raise", severity: "warning", value: null, ts: 40_000 },
  ]);
  assert.equal(t.deadline(), null); // raised: only a message can change it
  assert.deepEqual(trans(t.tick(100)), []);
  assert.deepEqual(trans(t.msg(101, { rpm: 2 })), ["clear:quiet=null@101000"]);
  assert.equal(t.deadline(), 131);
});

Deno.test("stale with a field: only messages carrying it count", () => {
  const t = new Twin(compile({ id: "notemp", kind: "stale", seconds: 30, field: "temp" }));
  t.msg(0, { temp: 1 });
  t.msg(20, { rpm: 1 });
  assert.equal(t.deadline(), 30);
  assert.deepEqual(trans(t.tick(30)), ["raise:notemp=null@30000"]);
  assert.deepEqual(trans(t.msg(40, { rpm: 1 })), []);
  assert.deepEqual(trans(t.msg(41, { temp: 3 })), ["clear:notemp=null@41000"]);
});

Deno.test("stale: a twin that never sent anything is watched from the first tick", () => {
  const t = new Twin(compile({ id: "quiet", kind: "stale", seconds: 30 }));
  assert.equal(t.deadline(), 0); // no state yet: tick at once to start watching
  assert.deepEqual(trans(t.tick(100)), []);
  assert.equal(t.state!.rules.quiet.seen, 100_000);
  assert.equal(t.deadline(), 130);
  assert.deepEqual(trans(t.tick(130)), ["raise:quiet=null@130000"]);
});
