import assert from "node:assert/strict";
import type { JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { AckRegistry, ShardConsumer } from "./shard_consumer.ts";
import { entrySeq } from "./batch.ts";
import { silentLogger } from "../obs/log.ts";

/** A delivered stream record: only its sequence and ack are used. */
const record = (seq: number) => ({ seq, ack: () => {} }) as unknown as JsMsg;

/** Settled state of `p` after pending callbacks ran: "pending", or its value. */
async function state<T>(p: Promise<T>): Promise<T | "pending"> {
  return await Promise.race([p, Promise.resolve().then(() => "pending" as const)]);
}

Deno.test("ack registry: drained resolves when the shard's last record is retired, not before", async () => {
  const acks = new AckRegistry();
  assert.equal(await acks.drained(1), true, "nothing in flight: at once");
  acks.add(record(3), 1, 2);
  acks.add(record(4), 1, 1);
  acks.add(record(5), 2, 1);
  const drained = acks.drained(1);
  await acks.retire([entrySeq(3, 0), entrySeq(3, 1), entrySeq(5, 0)]);
  assert.equal(await state(drained), "pending", "record 4 is still in flight");
  await acks.retire([entrySeq(4, 0)]);
  assert.equal(await state(drained), true);
});

Deno.test("ack registry: forgetting a shard (lease lost) wakes who waits for its drain", async () => {
  const acks = new AckRegistry();
  acks.add(record(7), 1, 1);
  const drained = acks.drained(1);
  assert.equal(await state(drained), "pending");
  acks.forget(1);
  assert.equal(await state(drained), true);
});

Deno.test("ack registry: an aborted wait answers false; a later one still sees the drain", async () => {
  const acks = new AckRegistry();
  acks.add(record(8), 1, 1);
  const abort = new AbortController();
  const drained = acks.drained(1, abort.signal);
  abort.abort();
  assert.equal(await state(drained), false);
  assert.equal(await acks.drained(1, abort.signal), false, "aborted before it waits");
  await acks.retire([entrySeq(8, 0)]);
  assert.equal(await acks.drained(1), true);
});

Deno.test("shard consumer: drain answers true once acked, false when its time runs out", async () => {
  const acks = new AckRegistry();
  const consumer = new ShardConsumer({
    nc: null as unknown as NatsConnection, // drain talks to no server
    shard: 1,
    acks,
    dispatch: () => {},
    logger: silentLogger,
  });
  acks.add(record(9), 1, 1);
  assert.equal(await consumer.drain(0), false, "still in flight when the time is up");
  const drained = consumer.drain();
  await acks.retire([entrySeq(9, 0)]);
  assert.equal(await drained, true);
});
