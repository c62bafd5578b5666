import assert from "node:assert/strict";
import {
  complete,
  enqueue,
  expire,
  KEEP_FINISHED_COMMANDS,
  markDelivered,
  MAX_OPEN_COMMANDS,
  newCommand,
  nextExpiry,
} from "./commands.ts";
import { emptyTwin, type TwinRecord } from "./twin.ts";
import { applyTwin } from "./twin_apply.ts";

const cmd = (id: string, now = 1000, ttlMs = 5000) =>
  newCommand({ id, name: "n", args: {}, mode: "async", source: "api", now, ttlMs });

Deno.test("commands: the queue holds 16 open commands; finished ones do not count", () => {
  let l = [] as ReturnType<typeof cmd>[];
  for (let i = 0; i < MAX_OPEN_COMMANDS; i++) l = enqueue(l, cmd(`c${i}`))!;
  assert.equal(enqueue(l, cmd("extra")), null);
  l = complete(l, "c0", { status: "ok" }, 2000)!.list;
  assert.ok(enqueue(l, cmd("extra")), "room again after one finished");
  assert.equal(enqueue(l, cmd("c1")), l, "the same id again changes nothing");
});

Deno.test("commands: results finish open commands only; bad status fails with a reason", () => {
  const l = markDelivered([cmd("a"), cmd("b")], ["a"], 1500);
  assert.equal(l[0].status, "delivered");
  assert.equal(l[0].deliveries, 1);
  assert.equal(l[1].status, "pending");
  const ok = complete(l, "a", { status: "ok", result: { x: 1 } }, 1600)!;
  assert.equal(ok.command.status, "succeeded");
  assert.deepEqual(ok.command.result, { x: 1 });
  assert.equal(complete(ok.list, "a", { status: "ok" }, 1700), null, "already finished");
  assert.equal(complete(ok.list, "zzz", { status: "ok" }, 1700), null, "unknown");
  const bad = complete(ok.list, "b", { status: "done" }, 1800)!;
  assert.equal(bad.command.status, "failed");
  assert.match(String(bad.command.error), /must be "ok" or "error", got "done"/);
  const err = complete(l, "b", { status: "error", error: { code: 7 } }, 1800)!;
  assert.deepEqual(err.command.error, { code: 7 });
  // the result of a command still pending: delivered (its PUBACK may come after the result)
  assert.equal(err.command.deliveredAt, 1800);
  assert.equal(err.command.deliveries, 1);
});

Deno.test("commands: expiry at the deadline, the next deadline, bounded history", () => {
  const l = [cmd("a", 0, 100), cmd("b", 0, 300)];
  assert.equal(nextExpiry(l), 100);
  assert.equal(expire(l, 99).expired.length, 0);
  const e = expire(l, 100);
  assert.deepEqual(e.expired.map((c) => c.id), ["a"]);
  assert.equal(nextExpiry(e.list), 300);
  let h = [] as ReturnType<typeof cmd>[];
  for (let i = 0; i < 30; i++) {
    h = enqueue(h, cmd(`h${i}`))!;
    h = complete(h, `h${i}`, { status: "ok" }, 2000 + i)!.list;
  }
  assert.equal(h.length, KEEP_FINISHED_COMMANDS);
  assert.equal(h[0].id, "h10", "oldest dropped first");
});

Deno.test("twin: commands queue, deliver, finish by device result, expire by tick; version untouched", () => {
  let r: TwinRecord = applyTwin(emptyTwin("t", 0), {
    type: "put_attributes",
    attributes: {},
  }, 0).record;
  const q = applyTwin(r, { type: "command", command: cmd("k", 10, 1000) }, 10);
  assert.deepEqual(q.effects.map((e) => e.type), ["event", "deliver"]);
  r = q.record;
  assert.equal(r.state.version, 1);
  r = applyTwin(r, { type: "commands_delivered", ids: ["k"], at: 20 }, 20).record;
  assert.equal(r.commands![0].status, "delivered");
  const listen = applyTwin(r, { type: "commands_listening" }, 30);
  assert.deepEqual(listen.effects.map((e) => e.type), ["deliver"], "redelivered on resubscribe");
  const res = applyTwin(r, {
    type: "device",
    source: "mqtt",
    seq: 1,
    at: 40,
    body: { kind: "command_result", cmdId: "k", result: { status: "ok", result: 5 } },
  }, 40);
  assert.equal(res.record.commands![0].status, "succeeded");
  assert.equal(res.record.state.version, 1, "a command result does not change the twin state");
  assert.equal(res.record.traffic?.total, 1);
  const late = applyTwin(r, { type: "command", command: cmd("j", 50, 100) }, 50).record;
  const t = applyTwin(late, { type: "tick" }, 200);
  assert.equal(t.record.commands!.find((c) => c.id === "j")!.status, "expired");
  assert.equal(t.effects.length, 1);
});
