import assert from "node:assert/strict";
import { MAX_PAYLOAD_BYTES } from "../../../actors/validate.ts";
import { canonicalAll } from "./messages.ts";
import { MetricTable } from "./metric_table.ts";
import { roundTrip } from "./testing.ts";

Deno.test("sparkplug messages: changes become the device messages replay reads back", () => {
  const [status] = canonicalAll({ twin: "g:e", kind: "status", online: false });
  assert.ok(typeof status !== "string");
  assert.equal(status.rawTopic, "twins/g:e/status");
  assert.deepEqual(status.body, { kind: "status", online: false });
  const [t] = canonicalAll({
    twin: "g:e:d",
    kind: "telemetry",
    fields: { "Inputs/Temp C": 1.5 },
    ts: 9,
  });
  assert.ok(typeof t !== "string");
  assert.equal(new TextDecoder().decode(t.payload), '{"Inputs/Temp C":1.5,"ts":9}');
  assert.deepEqual(t.body, { kind: "telemetry", fields: { "Inputs/Temp C": 1.5 }, ts: 9 });
});

Deno.test("sparkplug messages: big births — metadata keeps the datatypes only, values split in parts", () => {
  const metrics = Array.from({ length: 900 }, (_, i) => ({
    name: `Line 3/Cell ${i}/${"x".repeat(90)}`,
    alias: i,
    type: "String",
    value: "y".repeat(60),
    properties: { engUnit: { type: "String", value: "z".repeat(40) } },
  }));
  const table = MetricTable.fromBirth(roundTrip({ seq: 0, metrics }).metrics);
  const meta = canonicalAll({ twin: "g:e", kind: "reported", meta: { table, bdSeq: 3 } });
  assert.ok(meta.length >= 2, `${meta.length} parts`);
  const keys = new Set<string>();
  for (const [i, p] of meta.entries()) {
    assert.ok(typeof p !== "string", String(p));
    assert.ok(p.payload.byteLength <= MAX_PAYLOAD_BYTES);
    assert.ok(p.body.kind === "reported");
    const sp = p.body.patch.$sparkplug as { bdSeq?: number; metrics: Record<string, unknown> };
    assert.equal(sp.bdSeq, i === 0 ? 3 : undefined, "bdSeq once");
    for (const [k, v] of Object.entries(sp.metrics)) {
      assert.equal(v, "String", "datatypes only");
      keys.add(k);
    }
  }
  assert.equal(keys.size, 900);
  const fields = Object.fromEntries(metrics.map((m) => [m.name, m.value]));
  const parts = canonicalAll({ twin: "g:e", kind: "telemetry", fields, ts: 1 });
  assert.ok(parts.length >= 3, `${parts.length} parts`);
  let n = 0;
  for (const p of parts) {
    assert.ok(typeof p !== "string", String(p));
    assert.ok(p.payload.byteLength <= MAX_PAYLOAD_BYTES);
    if (p.body.kind === "telemetry") {
      n += Object.keys(p.body.fields).length;
      assert.equal(p.body.ts, 1);
    }
  }
  assert.equal(n, 900);
});
