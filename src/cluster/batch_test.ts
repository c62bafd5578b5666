import assert from "node:assert/strict";
import {
  type BatchEntry,
  decodeBatch,
  encodeBatch,
  encodeBatchProps,
  entrySeq,
  propsHeaderBytes,
  SEQ_STRIDE,
  streamSeqOf,
} from "./batch.ts";
import { AckRegistry, recordEntries } from "./shard_consumer.ts";
import type { JsMsg } from "@nats-io/jetstream";

const enc = new TextEncoder();

Deno.test("batch: entries round-trip with topic, payload, arrival time and key", () => {
  const entries = [
    {
      topic: "twins/press-7/telemetry",
      payload: enc.encode('{"t":1}'),
      at: 1795596073414,
      key: 2 ** 47 + 5,
    },
    { topic: "twins/ünï.cödé/status", payload: enc.encode("online"), at: 1 },
    { topic: "twins/x/reported", payload: new Uint8Array(70_000).fill(7), at: 2, key: 0 },
  ];
  const back = decodeBatch(encodeBatch(entries));
  assert.deepEqual(back, entries);
  assert.deepEqual(decodeBatch(encodeBatch([])), []);
});

Deno.test("batch: malformed records are refused with a reason", () => {
  const good = encodeBatch([{ topic: "twins/a/telemetry", payload: enc.encode("{}"), at: 1 }]);
  assert.throws(() => decodeBatch(good.subarray(0, good.length - 1)), /truncated in entry 0/);
  assert.throws(() => decodeBatch(new Uint8Array([9, 0, 0, 0, 0])), /Not a version 1 batch/);
  const longer = new Uint8Array(good.length + 2);
  longer.set(good);
  assert.throws(() => decodeBatch(longer), /2 trailing bytes/);
  assert.throws(() =>
    encodeBatch(new Array(SEQ_STRIDE + 1).fill({ topic: "t", payload: good, at: 0 }))
  );
});

Deno.test("batch: entry sequences keep stream order and map back to their record", () => {
  assert.ok(entrySeq(7, SEQ_STRIDE - 1) < entrySeq(8, 0));
  assert.equal(streamSeqOf(entrySeq(12345, 499)), 12345);
});

function fakeMsg(seq: number, data: Uint8Array, hdrs: Record<string, string>) {
  const acked: number[] = [];
  const msg = {
    seq,
    data,
    headers: { get: (k: string) => hdrs[k] ?? "" },
    ack: () => acked.push(seq),
  } as unknown as JsMsg;
  return { msg, acked };
}

Deno.test("ack registry: a record is acked once every one of its entries is retired", async () => {
  const acks = new AckRegistry();
  const { msg, acked } = fakeMsg(3, new Uint8Array(), {});
  assert.equal(acks.add(msg, 1, 3), true);
  assert.equal(acks.add(msg, 1, 3), false, "a redelivery while in flight is not dispatched again");
  await acks.retire([entrySeq(3, 0), entrySeq(3, 2)]);
  assert.deepEqual(acked, []);
  assert.equal(acks.inFlight(1), 1);
  await acks.retire([entrySeq(3, 1)]);
  assert.deepEqual(acked, [3]);
  assert.equal(acks.inFlight(1), 0);
  // a record with nothing valid in it is acked at once
  const empty = fakeMsg(4, new Uint8Array(), {});
  acks.add(empty.msg, 1, 0);
  assert.deepEqual(empty.acked, [4]);
});

Deno.test("stream records: batches decode; single messages with headers still read", () => {
  const data = encodeBatch([{ topic: "twins/a/telemetry", payload: enc.encode("{}"), at: 5 }]);
  assert.equal(recordEntries(fakeMsg(1, data, { "tm-batch": "1" }).msg).length, 1);
  const single = recordEntries(
    fakeMsg(2, enc.encode('{"t":1}'), { "tm-topic": "twins/b/telemetry", "tm-at": "9" }).msg,
  );
  assert.deepEqual(single, [{ topic: "twins/b/telemetry", payload: enc.encode('{"t":1}'), at: 9 }]);
});

Deno.test("batch: MQTT 5 user properties travel in the tm-props header (ASCII), records without it have none", () => {
  const entries: BatchEntry[] = [
    { topic: "twins/a/telemetry", payload: enc.encode('{"t":1}'), at: 5 },
    {
      topic: "twins/a/telemetry",
      payload: enc.encode('{"t":2}'),
      at: 6,
      key: 9,
      props: [["line", "L3"], ["shift", "nüit\n"], ["shift", "😀"]],
    },
  ];
  assert.equal(encodeBatchProps([entries[0]]), undefined);
  const header = encodeBatchProps(entries)!;
  assert.match(header, /^[\x20-\x7e]+$/, "one ASCII line");
  assert.ok(header.length <= propsHeaderBytes(entries[1].props), "counted toward the batch size");
  const data = encodeBatch(entries);
  // the framing is unchanged: an earlier node reads the same record, without the properties
  assert.deepEqual(decodeBatch(data), entries.map(({ props: _, ...e }) => e));
  const back = recordEntries(fakeMsg(1, data, { "tm-batch": "2", "tm-props": header }).msg);
  assert.deepEqual(back, entries);
  assert.equal("props" in back[0], false);
  // a header that is malformed or out of the limits drops the properties, never the messages
  for (const bad of ["{", "[1]", '{"1":["odd"]}', `{"1":["${"n".repeat(65)}","v"]}`, '{"7":[]}']) {
    const r = recordEntries(fakeMsg(1, data, { "tm-batch": "2", "tm-props": bad }).msg);
    assert.equal(r.length, 2);
    assert.ok(r.every((e) => e.props === undefined), bad);
  }
});
