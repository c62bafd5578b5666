import assert from "node:assert/strict";
import { emptyTwin, RECENT_KEYS, type TwinMessage, type TwinRecord } from "./twin.ts";
import { applyTwin } from "./twin_apply.ts";
import { computeDelta, mergePatch } from "./json.ts";
import { parseDeviceBody, parseDeviceTopic } from "./validate.ts";

const enc = new TextEncoder();
const tel = (seq: number, fields: Record<string, number | string | boolean>, ts?: number) =>
  ({
    type: "device",
    source: "mqtt",
    seq,
    at: 1000 + seq,
    body: ts === undefined ? { kind: "telemetry", fields } : { kind: "telemetry", fields, ts },
  }) as TwinMessage;

function run(msgs: TwinMessage[], rec: TwinRecord = emptyTwin("press-7", 0)) {
  for (const m of msgs) rec = applyTwin(rec, m, 5000).record;
  return rec;
}

Deno.test("telemetry: version counts messages, reported and metadata ts updated", () => {
  const r = run([tel(1, { temp: 20 }), tel(2, { temp: 21, rpm: 5 }), tel(3, { temp: 21 }, 9999)]);
  assert.equal(r.state.version, 3);
  assert.deepEqual(r.state.reported, { temp: 21, rpm: 5 });
  assert.equal(r.state.metadata.reported.temp.ts, 1002); // last *change* was message 2
  assert.equal(r.state.metadata.reported.rpm.ts, 1002);
});

Deno.test("telemetry emits a point with attribute tags and an event", () => {
  let rec = run([{ type: "put_attributes", attributes: { site: "A", type: "press", x: 1 } }]);
  const res = applyTwin(rec, tel(1, { temp: 20 }, 777), 5000);
  rec = res.record;
  assert.deepEqual(res.effects[0], {
    type: "point",
    tags: { device: "press-7", site: "A", type: "press" },
    fields: { temp: 20 },
    ts: 777,
  });
  assert.equal(res.effects[1].type, "event");
});

Deno.test("arrival-time points: one millisecond, distinct sub-ms parts from the sequence", () => {
  const same = (seq: number) =>
    ({ ...tel(seq, { temp: seq }), at: 1_700_000_000_000 }) as TwinMessage;
  let rec = emptyTwin("press-7", 0);
  const points = [];
  for (const seq of [999_998, 999_999, 1_000_000, 1_000_001]) {
    const res = applyTwin(rec, same(seq), 5000);
    rec = res.record;
    points.push(res.effects.find((e) => e.type === "point"));
  }
  assert.deepEqual(points.map((p) => p?.type === "point" && [p.ts, p.subMs]), [
    [1_700_000_000_000, 999_998],
    [1_700_000_000_000, 999_999],
    [1_700_000_000_000, 0],
    [1_700_000_000_000, 1],
  ]);
  // a device's own ts is its point's time exactly (no sub-ms part)
  const own = applyTwin(rec, tel(1_000_002, { temp: 1 }, 777), 5000).effects[0];
  assert.ok(own.type === "point" && own.ts === 777 && own.subMs === undefined);
});

Deno.test("a redelivered sequence is ignored (exactly-once apply)", () => {
  const r1 = run([tel(1, { temp: 1 }), tel(2, { temp: 2 })]);
  const res = applyTwin(r1, tel(2, { temp: 99 }), 6000);
  assert.equal(res.duplicate, true);
  assert.equal(res.record.state.version, 2);
  assert.equal(res.record.state.reported.temp, 2);
  // another source has its own sequence
  const other = applyTwin(r1, { ...tel(1, { temp: 3 }), source: "http" } as TwinMessage, 6000);
  assert.equal(other.record.state.version, 3);
});

Deno.test("a device's resend (same key, new sequence) is consumed but not applied", () => {
  const keyed = (seq: number, key: number, temp: number) =>
    ({ ...tel(seq, { temp }), key }) as TwinMessage;
  let rec = run([keyed(1, 11, 1), keyed(2, 12, 2)]);
  rec = applyTwin(rec, { type: "put_attributes", attributes: { site: "A" } }, 5000).record;
  const res = applyTwin(rec, keyed(3, 11, 1), 6000);
  assert.equal(res.duplicate, true);
  assert.equal(res.resend, true);
  assert.deepEqual(res.effects, []);
  assert.equal(res.record.state.version, 3); // two messages and the attributes
  assert.equal(res.record.seqs.mqtt, 3); // its sequence is consumed
  // a new key applies; keys are remembered for the last RECENT_KEYS messages only
  rec = res.record;
  for (let i = 0; i < RECENT_KEYS; i++) rec = applyTwin(rec, keyed(4 + i, 100 + i, 5), 7000).record;
  assert.equal(rec.recent?.length, RECENT_KEYS);
  assert.equal(rec.state.version, 3 + RECENT_KEYS);
  const late = applyTwin(rec, keyed(9999, 11, 1), 8000);
  assert.equal(late.duplicate, undefined, "key 11 was forgotten: applied");
  assert.equal(late.record.state.version, 4 + RECENT_KEYS);
});

Deno.test("a broker's first delivery (negative key) is applied and remembered, never taken for a resend; its redelivery (positive key) is skipped", () => {
  const keyed = (seq: number, key: number, temp: number) =>
    ({ ...tel(seq, { temp }), key }) as TwinMessage;
  // two first deliveries with the same key (a packet id come round, same payload): both apply
  let rec = run([keyed(1, -21, 1), keyed(2, -21, 1)]);
  assert.equal(rec.state.version, 2);
  assert.deepEqual(rec.recent, [21, 21]);
  // the redelivery (DUP) of a message applied before: consumed, not applied
  const dup = applyTwin(rec, keyed(3, 21, 1), 6000);
  assert.equal(dup.resend, true);
  assert.equal(dup.record.state.version, 2);
  // a DUP message never applied (it was not durable before the kill): applied
  rec = applyTwin(dup.record, keyed(4, 22, 2), 7000).record;
  assert.equal(rec.state.version, 3);
});

Deno.test("reported is a JSON merge patch; null deletes", () => {
  const dev = (seq: number, patch: Record<string, unknown>): TwinMessage => ({
    type: "device",
    source: "mqtt",
    seq,
    at: seq,
    body: { kind: "reported", patch },
  });
  const r = run([
    dev(1, { fw: { v: "1.0", ch: "stable" }, x: 1 }),
    dev(2, { fw: { ch: null }, x: null }),
  ]);
  assert.deepEqual(r.state.reported, { fw: { v: "1.0" } });
  assert.equal(r.state.version, 2);
});

Deno.test("desired patch: If-Match stale -> version_conflict, delta computed", () => {
  let r = run([tel(1, { speed: 10, mode: "auto" })]);
  const ok = applyTwin(
    r,
    { type: "patch_desired", patch: { speed: 20, mode: "auto" }, ifMatch: 1 },
    7,
  );
  r = ok.record;
  assert.equal(r.state.version, 2);
  assert.deepEqual(r.state.delta, { speed: 20 });
  assert.deepEqual(ok.effects[0], { type: "desired", desired: { speed: 20, mode: "auto" } });
  const stale = applyTwin(r, { type: "patch_desired", patch: { speed: 30 }, ifMatch: 1 }, 8);
  assert.deepEqual(stale.error, { code: "version_conflict", expected: 1, actual: 2 });
  assert.equal(stale.record, r);
  r = run([tel(2, { speed: 20 })], r);
  assert.deepEqual(r.state.delta, {});
});

Deno.test("status online/offline sets connectivity", () => {
  const st = (seq: number, online: boolean): TwinMessage => ({
    type: "device",
    source: "mqtt",
    seq,
    at: seq * 10,
    body: { kind: "status", online },
  });
  const r = run([st(1, true), st(2, false)]);
  assert.deepEqual(r.state.connectivity, { status: "offline", since: 20 });
});

Deno.test("merge patch and nested delta", () => {
  assert.deepEqual(mergePatch({ a: 1, b: { c: 2 } }, { b: { d: 3 }, a: null }), {
    b: { c: 2, d: 3 },
  });
  assert.deepEqual(computeDelta({ cfg: { a: 1, b: 2 }, x: [1] }, { cfg: { a: 1, b: 3 }, x: [1] }), {
    cfg: { b: 2 },
  });
});

Deno.test("topic and payload validation per the contract", () => {
  assert.deepEqual(parseDeviceTopic("twins/p-1.a:b_C/telemetry"), {
    twin: "p-1.a:b_C",
    kind: "telemetry",
  });
  assert.equal(parseDeviceTopic("twins/bad id/telemetry"), "bad_id");
  assert.equal(parseDeviceTopic(`twins/${"x".repeat(129)}/telemetry`), "bad_id");
  assert.equal(parseDeviceTopic("twins/a/desired"), "bad_topic");
  assert.equal(parseDeviceTopic("other/a/telemetry"), "bad_topic");
  assert.deepEqual(parseDeviceTopic("twins/a/commands/c1/result"), {
    twin: "a",
    kind: "command_result",
    cmdId: "c1",
  });
  const t = { twin: "a", kind: "telemetry" as const };
  assert.equal(parseDeviceBody(t, enc.encode("nope")), "not_json");
  assert.equal(parseDeviceBody(t, enc.encode("[1]")), "not_object");
  assert.equal(parseDeviceBody(t, enc.encode('{"a":{"b":1}}')), "bad_field");
  assert.equal(parseDeviceBody(t, new Uint8Array(64 * 1024 + 1)), "too_large");
  assert.deepEqual(parseDeviceBody(t, enc.encode('{"temp":1.5,"ok":true,"ts":5}')), {
    kind: "telemetry",
    fields: { temp: 1.5, ok: true },
    ts: 5,
  });
  const s = { twin: "a", kind: "status" as const };
  assert.deepEqual(parseDeviceBody(s, enc.encode("online")), { kind: "status", online: true });
  assert.deepEqual(parseDeviceBody(s, enc.encode('"offline"')), { kind: "status", online: false });
  assert.equal(parseDeviceBody(s, enc.encode("maybe")), "bad_status");
});
