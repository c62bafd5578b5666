import assert from "node:assert/strict";
import type { IngestPort } from "../../bridges/ingest.ts";
import { createLogger } from "../../obs/log.ts";
import { createMetrics } from "../../obs/metrics.ts";
import { startBroker } from "./broker.ts";
import { PINGREQ, puback, publish, rawMqtt as raw } from "../../../tests/harness/raw_mqtt.ts";

/** An ingest that makes nothing durable until the test releases it. */
class HeldIngest implements IngestPort {
  readonly held: Array<{ topic: string; release(): void }> = [];
  submit(_t: unknown, _b: unknown, topic: string): Promise<void> {
    return new Promise((release) => this.held.push({ topic, release }));
  }
}

async function broker(receiveMaximum: number) {
  const ingest = new HeldIngest();
  const metrics = createMetrics();
  const lines: string[] = [];
  const b = await startBroker({
    host: "127.0.0.1",
    port: 0,
    ingest,
    logger: createLogger("info", "mqtt", (l) => lines.push(l)),
    metrics,
    receiveMaximum,
  });
  return { b, ingest, metrics, lines };
}

Deno.test("receive maximum: an MQTT 5 client over it gets its earlier PUBACKs, then DISCONNECT 0x93", async () => {
  const { b, ingest, metrics, lines } = await broker(2);
  await using _ = b;
  const c = await raw(b.port, 5, "press-1");
  const t = "twins/press-1/telemetry";
  // one write, one read: the three PUBLISHes reach the broker before anything is durable
  await c.send(
    publish(5, t, 1, '{"a":1}'),
    publish(5, t, 2, '{"a":2}'),
    publish(5, t, 3, '{"a":3}'),
    PINGREQ,
  );
  assert.equal((await c.read())?.type, 13, "PINGRESP: the burst was read");
  assert.equal(ingest.held.length, 2, "the third message is not taken");
  ingest.held[0].release();
  await puback(c, 1);
  ingest.held[1].release();
  await puback(c, 2);
  const disconnect = await c.read();
  assert.equal(disconnect?.type, 14, "DISCONNECT");
  assert.equal(disconnect.body[0], 0x93, "Receive Maximum exceeded");
  assert.match(new TextDecoder().decode(disconnect.body), /more than 2 QoS 1\/2 messages/);
  assert.equal(await c.read(), null, "closed");
  c.close();
  assert.equal(ingest.held.length, 2, "the third message never taken");
  assert.match(
    await metrics.registry.metrics(),
    /twinmill_mqtt_messages_rejected_total\{reason="receive_maximum"\} 1/,
  );
  assert.equal(lines.filter((l) => l.includes("Receive Maximum")).length, 1);
});

Deno.test("receive maximum: refused messages free their place (no leak)", async () => {
  const { b, ingest } = await broker(2);
  await using _ = b;
  const c = await raw(b.port, 5, "press-2");
  const good = "twins/press-2/telemetry";
  // refused at once (0x99 payload format invalid, 0x90 topic name invalid), then two more
  await c.send(
    publish(5, good, 1, "not json"),
    publish(5, "nope/press-2", 2, "{}"),
    publish(5, good, 3, '{"a":1}'),
    publish(5, good, 4, '{"a":2}'),
    PINGREQ,
  );
  assert.equal((await c.read())?.body[2], 0x99);
  assert.equal((await c.read())?.body[2], 0x90);
  assert.equal((await c.read())?.type, 13, "PINGRESP, no DISCONNECT");
  assert.equal(ingest.held.length, 2);
  for (const h of ingest.held) h.release();
  await puback(c, 3);
  await puback(c, 4);
  // the window is empty again: two more are taken, the connection stays
  await c.send(publish(5, good, 5, '{"a":3}'), publish(5, good, 6, '{"a":4}'), PINGREQ);
  assert.equal((await c.read())?.type, 13);
  assert.equal(ingest.held.length, 4);
  ingest.held[2].release();
  ingest.held[3].release();
  await puback(c, 5);
  await puback(c, 6);
  c.close();
});

Deno.test("receive maximum: an MQTT 3.1.1 client is held back, in order, never disconnected", async () => {
  const { b, ingest } = await broker(2);
  await using _ = b;
  const c = await raw(b.port, 4, "press-3");
  const t = "twins/press-3/telemetry";
  await c.send(...[1, 2, 3, 4, 5].map((i) => publish(4, t, i, `{"n":${i}}`)), PINGREQ);
  assert.equal((await c.read())?.type, 13, "PINGRESP: the burst was read");
  assert.equal(ingest.held.length, 2, "two taken, three waiting");
  ingest.held[0].release();
  await puback(c, 1);
  assert.equal(ingest.held.length, 3, "a waiting message takes the free place");
  for (let i = 1; i < 5; i++) {
    ingest.held[i].release();
    await puback(c, i + 1);
  }
  assert.equal(ingest.held.length, 5);
  // a connection that closes with messages in flight takes its count with it
  await c.send(publish(4, t, 6, '{"n":6}'), publish(4, t, 7, '{"n":7}'), publish(4, t, 8, "{}"));
  await waitUntil(() => ingest.held.length === 7);
  c.close();
  const d = await raw(b.port, 4, "press-3");
  await d.send(publish(4, t, 1, '{"n":9}'), publish(4, t, 2, '{"n":10}'), PINGREQ);
  await waitUntil(() => ingest.held.length === 9);
  assert.equal((await d.read())?.type, 13);
  for (const h of ingest.held) h.release();
  await puback(d, 1);
  await puback(d, 2);
  assert.equal(ingest.held.length, 9, "the closed connection's waiting message never taken");
  d.close();
});

Deno.test("receive maximum: while an MQTT 3.1.1 client's messages wait, its socket is not read", async () => {
  const { b, ingest } = await broker(2);
  await using _ = b;
  const c = await raw(b.port, 4, "press-4");
  const other = await raw(b.port, 4, "other");
  const t = "twins/press-4/telemetry";
  await c.send(...[1, 2, 3].map((i) => publish(4, t, i, `{"n":${i}}`)));
  await waitUntil(() => ingest.held.length === 2);
  // PINGREQs in separate writes: each arrival would let aedes's own batch reading read on
  for (let i = 0; i < 4; i++) {
    await c.send(PINGREQ);
    await other.send(PINGREQ); // a round trip through the broker: c's bytes have arrived
    assert.equal((await other.read())?.type, 13);
  }
  ingest.held[0].release();
  await puback(c, 1); // before any PINGRESP: nothing was read while the third message waited
  ingest.held[1].release();
  await puback(c, 2);
  for (let i = 0; i < 4; i++) assert.equal((await c.read())?.type, 13, "read once it was taken");
  ingest.held[2].release();
  await puback(c, 3);
  c.close();
  other.close();
});

/** Polls `ok` every few ms, up to 5 s. */
async function waitUntil(ok: () => boolean): Promise<void> {
  const end = Date.now() + 5000;
  while (!ok()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
}
