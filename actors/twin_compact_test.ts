import assert from "node:assert/strict";
import { compactRecord, emptyTwin, type TwinMessage, type TwinRecord } from "./twin.ts";
import { applyTwin } from "./twin_apply.ts";
import { EMPTY_OBJECT } from "./json.ts";

const tel = (seq: number, fields: Record<string, number | boolean>): TwinMessage => ({
  type: "device",
  source: "mqtt",
  seq,
  at: 1000 + seq,
  body: { kind: "telemetry", fields },
});

/** A record as a snapshot gives it back: parsed from its JSON. */
const reparsed = (r: TwinRecord): TwinRecord => JSON.parse(JSON.stringify(r));

Deno.test("compactRecord: a stored record's JSON is unchanged; empty parts and {ts} shared", () => {
  let r = applyTwin(emptyTwin("press-7", 0), tel(1, { temp: 20, rpm: 5, ok: true }), 9).record;
  r = applyTwin(r, { type: "put_attributes", attributes: { site: "A" } }, 10).record;
  const json = JSON.stringify(r);
  const c = compactRecord(reparsed(r));
  assert.equal(JSON.stringify(c), json);
  assert.equal(c.state.desired, EMPTY_OBJECT);
  assert.equal(c.state.delta, EMPTY_OBJECT);
  assert.equal(c.state.metadata.desired, EMPTY_OBJECT);
  assert.notEqual(c.state.attributes, EMPTY_OBJECT);
  const meta = c.state.metadata.reported;
  assert.equal(meta.temp, meta.rpm); // one {ts} for the fields changed together
  assert.equal(meta.rpm, meta.ok);
  assert.throws(() => (c.state.desired as Record<string, unknown>).x = 1, TypeError);
  // the next change builds on it as on any record
  const next = applyTwin(c, tel(2, { temp: 21 }), 11).record;
  assert.deepEqual(next.state.reported, { temp: 21, rpm: 5, ok: true });
  assert.equal(next.state.metadata.reported.temp.ts, 1002);
  assert.equal(next.state.metadata.reported.rpm.ts, 1001);
});

Deno.test("compactRecord: an empty stored twin is all shared parts; odd metadata kept as is", () => {
  const e = compactRecord(reparsed(emptyTwin("x", 5)));
  assert.equal(JSON.stringify(e), JSON.stringify(emptyTwin("x", 5)));
  assert.equal(e.state.reported, EMPTY_OBJECT);
  assert.equal(e.seqs, EMPTY_OBJECT);
  assert.equal(e.state.connectivity, emptyTwin("y", 0).state.connectivity);
  const odd = reparsed(emptyTwin("z", 0));
  const meta = JSON.parse('{"a":{"ts":1,"by":"x"},"__proto__":{"ts":2}}');
  odd.state.metadata.reported = meta;
  const json = JSON.stringify(odd);
  assert.equal(JSON.stringify(compactRecord(odd)), json);
});
