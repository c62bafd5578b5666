/**
 * The bridge's acknowledgements against a real mosquitto, in-process with a fake ingest: a
 * PUBACK goes out only once the message is durable (or rejected), so a session that ends
 * before gets its messages again, DUP and with the same packet ids; never more than the
 * bridge's Receive Maximum wait for their PUBACK.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { startBridge } from "../../src/connectors/bridge/bridge.ts";
import { RECEIVE_MAXIMUM } from "../../src/connectors/bridge/client_options.ts";
import type { BridgeConfig } from "../../src/config/bridge_config.ts";
import type { IngestPort } from "../../src/bridges/ingest.ts";
import type { Origin } from "../../src/bridges/message_key.ts";
import { createLogger } from "../../src/obs/log.ts";
import { createMetrics } from "../../src/obs/metrics.ts";
import { mosquittoPub, startMosquitto, waitFor } from "../harness/mod.ts";

interface Got {
  topic: string;
  payload: string;
  origin: Origin;
}

/** An ingest that records what it gets; `durable` decides when each submit resolves. */
function fakeIngest(durable: () => Promise<void>): IngestPort & { got: Got[] } {
  const got: Got[] = [];
  return {
    got,
    submit(_t, _body, topic, payload, _at, origin) {
      got.push({ topic, payload: new TextDecoder().decode(payload), origin: origin! });
      return durable();
    },
  };
}

const config = (url: string): BridgeConfig => ({
  url,
  clientId: "tm-acks-test",
  sessionExpirySec: 600,
});

async function bridge(url: string, ingest: IngestPort) {
  const lines: string[] = [];
  const listening: string[] = [];
  const b = await startBridge({
    config: config(url),
    ingest,
    logger: createLogger("info", "test", (l) => lines.push(l)),
    metrics: createMetrics(),
    owns: () => true,
    republish: () => Promise.resolve(),
    onCommandsListening: (twin) => listening.push(twin),
  });
  await waitFor(() => b.connected, { message: "bridge connected" });
  return { b, lines, listening };
}

Deno.test("bridge acks: nothing is acknowledged before it is durable; the next session gets it again (DUP, same packet id); rejected and durable ones are not redelivered", async () => {
  await using broker = await startMosquitto();
  const pub = (topic: string, msg: string) =>
    mosquittoPub(["-p", String(broker.port), "-q", "1", "-t", topic, "-m", msg]);

  // 1. an ingest that never makes anything durable
  const held = fakeIngest(() => new Promise(() => {}));
  const first = await bridge(broker.url, held);
  await waitFor(() => first.lines.some((l) => l.includes('"bridge subscribed"')));
  assert.equal((await pub("twins/a1/telemetry", "not json")).code, 0); // rejected: acknowledged
  for (let i = 1; i <= 3; i++) {
    assert.equal((await pub("twins/a1/telemetry", `{"n":${i}}`)).code, 0);
  }
  await waitFor(() => held.got.length === 3, { message: "three messages submitted" });
  assert.deepEqual(held.got.map((g) => g.origin.dup), [false, false, false]);
  assert.deepEqual(first.b.status(), {
    url: broker.url,
    clientId: "tm-acks-test",
    connected: true,
    protocol: "mqtt 5",
    share: null,
    unacknowledged: 3,
  });
  assert.deepEqual(first.listening, [], "not durable: no commands offered");
  await first.b[Symbol.asyncDispose]();

  // 2. the same session again: the three come back, DUP, same packet ids; now made durable
  const durable = fakeIngest(() => Promise.resolve());
  const second = await bridge(broker.url, durable);
  await waitFor(() => durable.got.length === 3, { message: "three messages redelivered" });
  assert.deepEqual(durable.got.map((g) => g.payload), ['{"n":1}', '{"n":2}', '{"n":3}']);
  assert.deepEqual(durable.got.map((g) => g.origin.dup), [true, true, true]);
  assert.deepEqual(
    durable.got.map((g) => g.origin.messageId),
    held.got.map((g) => g.origin.messageId),
  );
  assert.ok(second.lines.some((l) => l.includes('"sessionPresent":true')));
  // its device spoke: the twin's queued commands are offered, once per connection
  await waitFor(() => second.listening.length === 1);
  assert.deepEqual(second.listening, ["a1"]);
  await second.b[Symbol.asyncDispose]();

  // 3. and again: nothing is redelivered (the marker published now comes first)
  const after = fakeIngest(() => Promise.resolve());
  const third = await bridge(broker.url, after);
  assert.equal((await pub("twins/a1/telemetry", '{"marker":true}')).code, 0);
  await waitFor(() => after.got.length >= 1, { message: "the marker arrives" });
  assert.deepEqual(after.got.map((g) => g.payload), ['{"marker":true}']);
  assert.equal(after.got[0].origin.dup, false);
  await third.b[Symbol.asyncDispose]();
});

Deno.test("bridge acks: never more than its Receive Maximum unacknowledged, though mosquitto 2.0 sends past it once PUBACKs flow", async () => {
  await using broker = await startMosquitto({ config: ["max_queued_messages 100000"] });
  // a group commit every 20 ms: PUBACKs flow while the broker keeps sending
  let open = 0, most = 0;
  let batch: Array<() => void> = [];
  const commit = setInterval(() => {
    const b = batch;
    batch = [];
    open -= b.length;
    for (const resolve of b) resolve();
  }, 20);
  try {
    const ingest = fakeIngest(() => {
      most = Math.max(most, ++open);
      return new Promise<void>((resolve) => batch.push(resolve));
    });
    const { b, lines } = await bridge(broker.url, ingest);
    await waitFor(() => lines.some((l) => l.includes('"bridge subscribed"')));
    const dev = await mqtt.connectAsync(broker.url, { clientId: "burst" });
    await Promise.all(
      Array.from(
        { length: 3000 },
        (_, i) => dev.publishAsync(`twins/w${i % 3}/telemetry`, `{"n":${i}}`, { qos: 1 }),
      ),
    );
    await dev.endAsync();
    await waitFor(() => ingest.got.length === 3000, { timeoutMs: 30_000 });
    assert.ok(most <= RECEIVE_MAXIMUM, `${most} unacknowledged at once`);
    await waitFor(() => b.status().unacknowledged === 0);
    await b[Symbol.asyncDispose]();
  } finally {
    clearInterval(commit);
  }
});

Deno.test("bridge acks: what a restarted broker sends again of the messages made durable is acknowledged, not taken twice", async () => {
  await using broker = await startMosquitto({
    persistence: true,
    config: ["max_queued_messages 100000"],
  });
  let batch: Array<() => void> = [];
  const commit = setInterval(() => {
    const b = batch;
    batch = [];
    for (const resolve of b) resolve();
  }, 20);
  try {
    const ingest = fakeIngest(() => new Promise<void>((resolve) => batch.push(resolve)));
    const { b, lines } = await bridge(broker.url, ingest);
    await waitFor(() => lines.some((l) => l.includes('"bridge subscribed"')));
    const dev = await mqtt.connectAsync(broker.url, { clientId: "burst" });
    await Promise.all(
      Array.from(
        { length: 1200 },
        (_, i) => dev.publishAsync(`twins/v${i % 3}/telemetry`, `{"n":${i}}`, { qos: 1 }),
      ),
    );
    await dev.endAsync();
    await waitFor(() => ingest.got.length >= 300, { intervalMs: 5 });
    // mosquitto saves its session on the way down, without the PUBACKs it has not read yet
    await broker.restart(async () => void await waitFor(() => !b.connected));
    await waitFor(() => new Set(ingest.got.map((g) => g.payload)).size === 1200, {
      timeoutMs: 30_000,
    });
    assert.ok(lines.some((l) => l.includes('"sessionPresent":true')), "the session survived");
    const payloads = ingest.got.map((g) => g.payload);
    assert.equal(payloads.length, new Set(payloads).size, "each message submitted once");
    await b[Symbol.asyncDispose]();
  } finally {
    clearInterval(commit);
  }
});
