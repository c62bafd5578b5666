import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { startNats, waitFor } from "../../tests/harness/mod.ts";
import { parseDeviceTopic } from "../../actors/validate.ts";
import type { DeviceTopic } from "../../actors/validate.ts";
import { createMetrics } from "../obs/metrics.ts";
import { silentLogger } from "../obs/log.ts";
import type { Accepted } from "../bridges/ingest.ts";
import { shardOf } from "../sharding/shard.ts";
import { ensureInboundStream, INBOUND_STREAM, JetStreamIngest } from "./inbound.ts";
import { AckRegistry, ShardConsumer } from "./shard_consumer.ts";

const enc = new TextEncoder();

Deno.test("inbound stream (real nats-server): MQTT 5 user properties reach the shard's owner with their messages", async () => {
  await using nats = await startNats({ jetstream: true });
  const nc = await connect({ servers: nats.url });
  try {
    await ensureInboundStream(nc, 1);
    const shards = 4;
    const ingest = new JetStreamIngest(nc, shards, createMetrics());
    const topic = "twins/press-7/telemetry";
    const t = parseDeviceTopic(topic) as DeviceTopic;
    const body = { kind: "telemetry" as const, fields: { temp: 1 } };
    const props = [["line", "L3"], ["shift", "nüit"], ["shift", "late"]] as const;
    // one alone, then several gathered into one batch record while it is in flight
    await Promise.all([
      ingest.submit(t, body, topic, enc.encode('{"temp":1}'), 1, undefined, props),
      ingest.submit(t, body, topic, enc.encode('{"temp":2}'), 2, { clientId: "c", messageId: 5 }),
      ingest.submit(t, body, topic, enc.encode('{"temp":3}'), 3, undefined, [["line", "L4"]]),
      ingest.submit(t, body, topic, enc.encode('{"temp":4}'), 4),
    ]);
    const got: Accepted[] = [];
    const acks = new AckRegistry();
    const consumer = new ShardConsumer({
      nc,
      shard: shardOf("press-7", shards),
      acks,
      dispatch: (batch) => got.push(...batch),
      logger: silentLogger,
    });
    await consumer.start();
    try {
      await waitFor(() => got.length === 4, { message: "4 messages dispatched" });
      assert.deepEqual(got.map((a) => a.entry.at), [1, 2, 3, 4]);
      assert.deepEqual(got.map((a) => a.entry.props), [
        props,
        undefined,
        [["line", "L4"]],
        undefined,
      ]);
      assert.equal(typeof got[1].key, "number");
      await acks.retire(got.map((a) => a.entry.seq));
      const jsm = await jetstreamManager(nc);
      await waitFor(async () => (await jsm.streams.info(INBOUND_STREAM)).state.messages === 0, {
        message: "every record acked",
      });
    } finally {
      await consumer.stop();
    }
  } finally {
    await nc.close();
  }
});
