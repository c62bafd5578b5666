import assert from "node:assert/strict";
import { isRecord, packRecords, RECORD_BYTES, RecordIndex, unpackRecord } from "./log_records.ts";
import type { LogEntry } from "./port.ts";

const entry = (seq: number, size = 40, topic = `twins/dev-${seq % 7}/telemetry`): LogEntry => ({
  seq,
  topic,
  payload: new Uint8Array(size).fill(seq % 251),
  at: 1_700_000_000_000 + seq,
});

Deno.test("records: entries packed in order, each record within its size, read back unchanged", () => {
  const entries = Array.from({ length: 3000 }, (_, i) => entry(i + 1));
  entries.push(entry(3001, 64 * 1024), entry(3002, 10, "twins/é:ü/telemetry"));
  const recs = packRecords(entries);
  assert.ok(recs.length > 2);
  const back = recs.flatMap((r) => {
    assert.ok(isRecord(r.bytes));
    if (r.seqs.length > 1) assert.ok(r.bytes.byteLength <= RECORD_BYTES);
    const es = unpackRecord(r.bytes);
    assert.deepEqual(es.map((e) => e.seq), r.seqs);
    return es;
  });
  assert.deepEqual(back, entries);
  // the large entry is a record of its own
  assert.ok(recs.some((r) => r.seqs.length === 1 && r.seqs[0] === 3001));
  assert.equal(isRecord(new TextEncoder().encode('{"t":"x","a":1}\n{}')), false);
});

Deno.test("records: keys (the bridge's messages) are kept, records without keys keep the old layout", () => {
  const plain = [entry(1), entry(2)];
  const [old] = packRecords(plain);
  assert.equal(old.bytes[0], 0);
  assert.deepEqual(unpackRecord(old.bytes), plain);
  // a record with a keyed entry: every entry has a key slot (NaN = none), negative keys too
  const mixed = Array.from({ length: 2000 }, (_, i) => entry(i + 10));
  mixed[3] = { ...mixed[3], key: -(2 ** 51) - 7 };
  mixed[1500] = { ...mixed[1500], key: 12345 };
  const recs = packRecords(mixed);
  assert.ok(recs.some((r) => r.bytes[0] === 1));
  for (const r of recs) if (r.seqs.length > 1) assert.ok(r.bytes.byteLength <= RECORD_BYTES);
  const back = recs.flatMap((r) => unpackRecord(r.bytes));
  assert.deepEqual(back, mixed);
  assert.equal("key" in back[4], false);
});

Deno.test("record index: a record is deleted once all its entries are retired; until then its bitmap is kept", () => {
  const idx = new RecordIndex();
  idx.add([10, 11, 12], 0);
  idx.add([13, 14], 2);
  const a = idx.retire([11, 13, 99]);
  assert.deepEqual(a.other, [99]);
  assert.deepEqual(a.deleted, []);
  assert.deepEqual(a.marks.map((m) => [m.key, [...m.retired]]), [[10, [0b010]], [13, [0b01]]]);
  const b = idx.retire([14, 10, 12]);
  assert.deepEqual(b.deleted, [{ key: 13, parts: 2, marked: true }, {
    key: 10,
    parts: 0,
    marked: true,
  }]);
  assert.deepEqual(b.marks, []);
  assert.deepEqual(idx.retire([10]).other, [10]); // already retired: unknown now
});

Deno.test("record index: undo puts the entries back; a replayed bitmap skips retired entries", () => {
  const idx = new RecordIndex();
  idx.add([1, 2, 3], 0);
  const a = idx.retire([1, 2, 3]);
  assert.equal(a.deleted.length, 1);
  a.undo();
  const b = idx.retire([2]);
  assert.deepEqual(b.marks.map((m) => [...m.retired]), [[0b010]]);
  assert.equal(b.deleted.length, 0);

  const replayed = new RecordIndex();
  replayed.add([1, 2, 3], 0, new Uint8Array([0b101]));
  assert.equal(RecordIndex.retired(new Uint8Array([0b101]), 0), true);
  assert.equal(RecordIndex.retired(new Uint8Array([0b101]), 1), false);
  assert.equal(RecordIndex.retired(undefined, 0), false);
  assert.deepEqual(replayed.retire([1]).other, [1]);
  assert.deepEqual(replayed.retire([2]).deleted, [{ key: 1, parts: 0, marked: true }]);
});

Deno.test("records: MQTT 5 user properties are kept per entry (repeated names, UTF-8, empty values)", () => {
  const entries = Array.from({ length: 1500 }, (_, i) => entry(i + 1));
  entries[0] = { ...entries[0], props: [["line", "L3"]] };
  entries[7] = {
    ...entries[7],
    key: 42,
    props: [["shift", "é-night"], ["shift", ""], ["n".repeat(64), "v".repeat(256)]],
  };
  entries[1499] = { ...entries[1499], props: Array.from({ length: 16 }, (_, i) => [`p${i}`, "x"]) };
  const recs = packRecords(entries);
  assert.ok(recs.some((r) => r.bytes[0] === 2) && recs.some((r) => r.bytes[0] === 3));
  for (const r of recs) if (r.seqs.length > 1) assert.ok(r.bytes.byteLength <= RECORD_BYTES);
  const back = recs.flatMap((r) => unpackRecord(r.bytes));
  assert.deepEqual(back, entries);
  assert.equal("props" in back[1], false);
  assert.equal(isRecord(recs[0].bytes), true);
});

Deno.test("records: a record written before user properties existed still reads (flags 0 and 1)", () => {
  // byte for byte as the earlier version wrote them: seq, at, [key], topic len, payload len, ...
  const old = (keyed: boolean): Uint8Array => {
    const topic = new TextEncoder().encode("twins/a/telemetry");
    const payload = new TextEncoder().encode('{"t":1}');
    const head = keyed ? 30 : 22;
    const b = new Uint8Array(1 + head + topic.length + payload.length);
    const v = new DataView(b.buffer);
    b[0] = keyed ? 1 : 0;
    v.setFloat64(1, 7);
    v.setFloat64(9, 1_700_000_000_000);
    if (keyed) v.setFloat64(17, 99);
    v.setUint16(1 + head - 6, topic.length);
    v.setUint32(1 + head - 4, payload.length);
    b.set(topic, 1 + head);
    b.set(payload, 1 + head + topic.length);
    return b;
  };
  const plain: LogEntry = {
    seq: 7,
    topic: "twins/a/telemetry",
    payload: new TextEncoder().encode('{"t":1}'),
    at: 1_700_000_000_000,
  };
  assert.deepEqual(unpackRecord(old(false)), [plain]);
  assert.deepEqual(unpackRecord(old(true)), [{ ...plain, key: 99 }]);
  // and what is written without properties is still exactly that layout
  assert.deepEqual(packRecords([plain])[0].bytes, old(false));
});
