import assert from "node:assert/strict";
import { jetstream, jetstreamManager, type JsMsg } from "@nats-io/jetstream";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { AckRegistry, ShardConsumer } from "./shard_consumer.ts";
import { entrySeq } from "./batch.ts";
import { ensureInboundStream, H_AT, H_TOPIC, INBOUND_STREAM } from "./inbound.ts";
import { subjects } from "../transport/subjects.ts";
import { silentLogger } from "../obs/log.ts";
import { startNats, waitFor } from "../../tests/harness/mod.ts";

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

Deno.test("shard consumer: a record delivered while the shard is not owned here is given back at once, not held for the ack wait", async () => {
  await using nats = await startNats({ jetstream: true });
  const nc = await connect({ servers: nats.url });
  try {
    await ensureInboundStream(nc, 1);
    let owned = false;
    const got: number[] = [];
    const consumer = new ShardConsumer({
      nc,
      shard: 1,
      acks: new AckRegistry(),
      dispatch: (b) => got.push(...b.map((a) => a.entry.seq)),
      logger: silentLogger,
      owned: () => owned,
    });
    await consumer.start();
    const h = headers();
    h.set(H_TOPIC, "twins/a/telemetry");
    h.set(H_AT, "1");
    await jetstream(nc).publish(subjects.inbound(1), '{"t":1}', { headers: h });
    const jsm = await jetstreamManager(nc);
    const info = () => jsm.consumers.info(INBOUND_STREAM, ShardConsumer.durable(1));
    // delivered again and again (a held record would wait 30 s), never applied
    await waitFor(async () => (await info()).delivered.consumer_seq >= 3, { timeoutMs: 5_000 });
    assert.deepEqual(got, []);
    owned = true;
    await waitFor(() => got.length === 1, { timeoutMs: 5_000 });
    await consumer.stop();
  } finally {
    await nc.close();
  }
});
