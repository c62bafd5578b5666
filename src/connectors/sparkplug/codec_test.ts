import assert from "node:assert/strict";
import {
  countMetrics,
  decode,
  encodeCommand,
  readState,
  statePayload,
  telemetryValue,
} from "./codec.ts";
import { encode, tahuDecode } from "./testing.ts";

Deno.test("codec: metrics are counted on the wire before decoding; over the limit is refused", () => {
  const metrics = Array.from(
    { length: 50 },
    (_, i) => ({ name: `m${i}`, type: "Int32", value: i }),
  );
  const b = encode({ timestamp: 1, seq: 0, metrics });
  assert.equal(countMetrics(b, 1000), 50);
  assert.equal(decode(b, 1 << 20, 49), "too_many_metrics");
  assert.equal(decode(b, 100, 1000), "too_large");
  const d = decode(b, 1 << 20, 50);
  assert.ok(typeof d !== "string");
  assert.equal(d.metrics.length, 50);
});

Deno.test("codec: malformed protobuf is refused, never thrown", () => {
  for (
    const bad of [
      new Uint8Array([0x12, 0xff, 0xff]), // length past the end
      new Uint8Array([0x0b]), // group wire type
      new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
      new TextEncoder().encode('{"json": true}'),
    ]
  ) {
    assert.equal(decode(bad, 1 << 20, 100), "malformed", String(bad));
  }
  // protobuf on the wire, but a metric whose own bytes are garbage
  assert.equal(decode(new Uint8Array([0x12, 0x02, 0xff, 0xff]), 1 << 20, 100), "malformed");
});

Deno.test("codec: Tahu's compressed payloads are refused", () => {
  const b = encode({ metrics: [] });
  const withUuid = new Uint8Array([
    ...b,
    0x22,
    18,
    ...new TextEncoder().encode("SPBV1.0_COMPRESSED"),
  ]);
  assert.equal(decode(withUuid, 1 << 20, 100), "compressed");
});

Deno.test("codec: values typed by datatype — signed ints, 64-bit, floats, strings; the rest left out", () => {
  const d = decode(
    encode({
      timestamp: 1_700_000_000_000,
      seq: 7,
      metrics: [
        { name: "i8", type: "Int8", value: -5 },
        { name: "i64", type: "Int64", value: -1234567890123 },
        { name: "u64", type: "UInt64", value: 9007199254740991 },
        { name: "f", type: "Float", value: 1.5 },
        { name: "s", type: "String", value: "on" },
        { name: "b", type: "Boolean", value: false },
        { name: "bytes", type: "Bytes", value: new Uint8Array([1]) },
      ],
    }),
    1 << 20,
    100,
  );
  assert.ok(typeof d !== "string");
  assert.equal(d.timestamp, 1_700_000_000_000);
  assert.equal(d.seq, 7);
  const types = ["Int8", "Int64", "UInt64", "Float", "String", "Boolean", "Bytes"] as const;
  const v = d.metrics.map((m, i) => telemetryValue(types[i], m.value));
  assert.deepEqual(v, [-5, -1234567890123, 9007199254740991, 1.5, "on", false, undefined]);
});

Deno.test("codec: a DATA metric without a datatype keeps its raw value (typed later by the birth)", () => {
  // as a spec-following edge node sends it (Tahu's encoder always writes one): Payload
  // { seq: 1, metrics: [{ alias: 3, long_value: 7 }] }
  const b = new Uint8Array([0x18, 0x01, 0x12, 0x04, 0x10, 0x03, 0x58, 0x07]);
  const d = decode(b, 1 << 20, 10);
  assert.ok(typeof d !== "string");
  assert.equal(d.seq, 1);
  assert.deepEqual([d.metrics[0].alias, d.metrics[0].datatype], [3, 0]);
  assert.equal(telemetryValue("Int64", d.metrics[0].value), 7);
});

Deno.test("codec: commands encode as Tahu reads them; STATE is JSON", () => {
  const b = encodeCommand([
    { name: "Node Control/Rebirth", datatype: "Boolean", value: true },
    { name: "Setpoint", alias: 4, datatype: "Int64", value: -7 },
  ], 42);
  const p = tahuDecode(b);
  assert.equal(Number(p.timestamp), 42);
  assert.equal(p.metrics?.[0].name, "Node Control/Rebirth");
  assert.equal(p.metrics?.[0].value, true);
  assert.equal(Number(p.metrics?.[1].alias), 4);
  assert.equal(Number(p.metrics?.[1].value), -7);
  assert.equal(new TextDecoder().decode(statePayload(true, 5)), '{"online":true,"timestamp":5}');
  assert.deepEqual(readState(statePayload(false, 5)), { online: false, timestamp: 5 });
  assert.equal(readState(new TextEncoder().encode("online")), null);
});
