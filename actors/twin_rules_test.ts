import assert from "node:assert/strict";
import { emptyTwin, type TwinEffect, type TwinMessage, type TwinRecord } from "./twin.ts";
import { applyTwin } from "./twin_apply.ts";
import { parseProfile } from "./rules/profile.ts";
import type { CompiledProfile } from "./rules/compile.ts";
import { KEEP_CLEARED } from "./twin_rules.ts";

function profile(json: unknown): CompiledProfile {
  const r = parseProfile(json);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.profile;
}

const overheat = profile({
  rules: [
    {
      id: "overheat",
      kind: "threshold",
      field: "temp",
      op: ">",
      value: 80,
      clear: 75,
      severity: "critical",
      actions: [
        { on: "raise", type: "desired", patch: { fan: "max" } },
        { on: "raise", type: "webhook", url: "http://127.0.0.1:1/hook" },
      ],
    },
    { id: "quiet", kind: "deadband", field: "rpm", band: 10 },
  ],
});

let seq = 0;
const tel = (fields: Record<string, number>, at = 1000): TwinMessage => ({
  type: "device",
  source: "mqtt",
  seq: ++seq,
  at,
  body: { kind: "telemetry", fields },
});

function run(rec: TwinRecord, msgs: TwinMessage[], p = overheat, now = 5000) {
  const effects: TwinEffect[] = [];
  for (const m of msgs) {
    const r = applyTwin(rec, m, now, p);
    rec = r.record;
    effects.push(...r.effects);
  }
  return { rec, effects };
}

Deno.test("twin rules: raise, count, clear with hysteresis; actions run on raise", () => {
  let { rec, effects } = run(emptyTwin("press-7", 0), [tel({ temp: 70 }), tel({ temp: 85 })]);
  assert.equal(rec.state.alarms?.length, 1);
  const a = rec.state.alarms![0];
  assert.equal(a.id, "press-7:overheat:1");
  assert.equal(a.state, "active");
  assert.equal(a.value, 85);
  // the desired action applied in the same step: one more version, a downlink, a webhook
  assert.deepEqual(rec.state.desired, { fan: "max" });
  assert.equal(rec.state.version, 3);
  assert.ok(effects.some((e) => e.type === "desired"));
  const hook = effects.find((e) => e.type === "webhook");
  assert.equal(hook?.type === "webhook" && hook.url, "http://127.0.0.1:1/hook");
  assert.ok(effects.some((e) => e.type === "alarm" && e.change === "raised"));

  ({ rec, effects } = run(rec, [tel({ temp: 78 })])); // above clear: stays
  assert.equal(rec.state.alarms?.[0].state, "active");
  ({ rec, effects } = run(rec, [tel({ temp: 74 })]));
  assert.deepEqual(rec.state.alarms, []);
  assert.equal(rec.cleared?.[0].state, "cleared");
  assert.ok(effects.some((e) => e.type === "alarm" && e.change === "cleared"));
  // a new raise is a new alarm
  ({ rec } = run(rec, [tel({ temp: 90 })]));
  assert.equal(rec.state.alarms?.[0].id, "press-7:overheat:2");
});

Deno.test("twin rules: deadband drops small changes from the point and the event only", () => {
  const { rec, effects } = run(emptyTwin("m", 0), [
    tel({ rpm: 1000, temp: 20 }),
    tel({ rpm: 1005, temp: 21 }),
    tel({ rpm: 1005 }),
  ]);
  const points = effects.filter((e) => e.type === "point");
  assert.deepEqual(points.map((p) => p.type === "point" && p.fields), [
    { rpm: 1000, temp: 20 },
    { temp: 21 },
  ]);
  assert.equal(rec.state.reported.rpm, 1005, "the twin still holds the latest value");
  assert.equal(rec.state.version, 3);
});

Deno.test("twin rules: acknowledge an open alarm, then unknown ids are refused", () => {
  let { rec } = run(emptyTwin("p", 0), [tel({ temp: 99 })]);
  const id = rec.state.alarms![0].id;
  const r = applyTwin(rec, { type: "ack_alarm", id, comment: "on it" }, 6000, overheat);
  rec = r.record;
  assert.equal(rec.state.alarms![0].state, "acknowledged");
  assert.equal(rec.state.alarms![0].ackComment, "on it");
  assert.equal(rec.state.version, 2, "alarm changes are not twin versions");
  const bad = applyTwin(rec, { type: "ack_alarm", id: "p:overheat:9" }, 6000, overheat);
  assert.equal(bad.error?.code, "alarm_not_found");
});

Deno.test("twin rules: a stale alarm raises on a tick and clears with the next message", () => {
  const stale = profile({
    rules: [{ id: "silent", kind: "stale", seconds: 30, severity: "major" }],
  });
  let { rec } = run(emptyTwin("s", 0), [tel({ t: 1 })], stale, 1000);
  rec = applyTwin(rec, { type: "tick" }, 20_000, stale).record;
  assert.deepEqual(rec.state.alarms ?? [], []);
  rec = applyTwin(rec, { type: "tick" }, 32_000, stale).record;
  assert.equal(rec.state.alarms?.[0].rule, "silent");
  ({ rec } = run(rec, [tel({ t: 2 })], stale, 33_000));
  assert.deepEqual(rec.state.alarms, []);
});

Deno.test("twin rules: removing the profile clears the twin's alarms; history is bounded", () => {
  let { rec } = run(emptyTwin("q", 0), [tel({ temp: 99 })]);
  const empty = profile({ rules: [] });
  rec = applyTwin(rec, { type: "tick" }, 7000, empty).record;
  assert.deepEqual(rec.state.alarms, []);
  for (let i = 0; i < KEEP_CLEARED + 5; i++) {
    ({ rec } = run(rec, [tel({ temp: 99 }), tel({ temp: 10 })]));
  }
  assert.equal(rec.cleared?.length, KEEP_CLEARED);
});

Deno.test("twin rules: rollup points carry their rule, so windows that start together never merge", () => {
  const windows = profile({
    rules: [
      { id: "m1", kind: "window", fields: ["temp"], seconds: 60, aggs: ["avg"] },
      { id: "m5", kind: "window", fields: ["temp"], seconds: 300, aggs: ["avg"] },
    ],
  });
  const msgs = [0, 30, 90, 200, 310, 400].map((s) => ({
    ...tel({ temp: s }),
    body: { kind: "telemetry" as const, fields: { temp: s }, ts: 1_800_000_000_000 + s * 1000 },
  }));
  const { effects } = run(emptyTwin("press-7", 0), msgs, windows);
  const points = effects.filter((e) => e.type === "point" && e.measurement === "rollup");
  const keys = points.map((p) => p.type === "point" && `${JSON.stringify(p.tags)} ${p.ts}`);
  assert.ok(points.some((p) => p.type === "point" && p.tags.rule === "m1"), "1-minute rollups");
  assert.ok(points.some((p) => p.type === "point" && p.tags.rule === "m5"), "5-minute rollups");
  assert.equal(new Set(keys).size, keys.length, `no two rollups share series and time: ${keys}`);
});
