import assert from "node:assert/strict";
import { memoryTransport } from "../src/transport/memory.ts";
import { subjects } from "../src/transport/subjects.ts";
import { createMetrics } from "../src/obs/metrics.ts";
import { silentLogger } from "../src/obs/log.ts";
import { type StreamClient, StreamHub } from "./stream_hub.ts";

/** A WebSocket stand-in: records what is sent, and how often `bufferedAmount` is read. */
class FakeSocket {
  sent: string[] = [];
  closed: number | undefined;
  reads = 0;
  backlog = 0; // bytes the "network" has not taken yet
  get bufferedAmount(): number {
    this.reads++;
    return this.backlog;
  }
  send(s: string): void {
    this.sent.push(s);
    this.backlog += new TextEncoder().encode(s).length;
  }
  close(code: number): void {
    this.closed = code;
  }
}

function setup(limit = 1000) {
  const transport = memoryTransport();
  const metrics = createMetrics();
  const hub = new StreamHub({ transport, metrics, logger: silentLogger, maxBufferedBytes: limit });
  const client = (visible?: (e: unknown) => boolean) => {
    const socket = new FakeSocket();
    const subs: Disposable[] = [];
    const c: StreamClient = {
      open: true,
      socket: socket as unknown as WebSocket,
      visible,
      buffered: 0,
      release: () => subs.splice(0).forEach((s) => s[Symbol.dispose]()),
    };
    return { c, socket, subs };
  };
  const counter = async (name: string) =>
    (await metrics.registry.getSingleMetric(name)!.get()).values[0]?.value ?? 0;
  return { transport, hub, client, counter };
}

Deno.test("stream hub: one transport subscription per subject, one JSON per event", async () => {
  const { transport, hub, client, counter } = setup();
  const a = client();
  const b = client();
  const subject = subjects.event("telemetry", "t1");
  a.subs.push(hub.subscribe(subject, a.c));
  b.subs.push(hub.subscribe(subject, b.c));
  b.subs.push(hub.subscribe(subjects.eventsOf("telemetry", "*"), b.c));
  assert.equal(hub.subjects, 2);
  const event = { type: "telemetry", twin: "t1", version: 1, ts: 0, data: { x: "é" } };
  transport.publish(subject, event);
  assert.deepEqual(a.socket.sent, [JSON.stringify(event)]);
  // b asked twice (exact and wildcard): it gets the event twice, as with one subscription each
  assert.deepEqual(b.socket.sent, [JSON.stringify(event), JSON.stringify(event)]);
  assert.equal(await counter("twinmill_ws_events_sent_total"), 3);
  a.c.release();
  b.c.release();
  assert.equal(hub.subjects, 0);
  transport.publish(subject, event);
  assert.equal(a.socket.sent.length, 1);
});

Deno.test("stream hub: a scoped client's filter; a closed client gets nothing", () => {
  const { transport, hub, client } = setup();
  const scoped = client((e) => (e as { twin: string }).twin !== "hidden");
  const gone = client();
  const subject = subjects.eventsOf("state", "*");
  scoped.subs.push(hub.subscribe(subject, scoped.c));
  gone.subs.push(hub.subscribe(subject, gone.c));
  gone.c.open = false;
  transport.publish(subjects.event("state", "hidden"), { twin: "hidden" });
  transport.publish(subjects.event("state", "shown"), { twin: "shown" });
  assert.deepEqual(scoped.socket.sent, ['{"twin":"shown"}']);
  assert.deepEqual(gone.socket.sent, []);
});

Deno.test("stream hub: dropped with 1013 once over the limit, bufferedAmount read seldom", async () => {
  const { transport, hub, client, counter } = setup(1000);
  const slow = client();
  const subject = subjects.event("telemetry", "t1");
  slow.subs.push(hub.subscribe(subject, slow.c));
  const event = { pad: "x".repeat(90) }; // 100 bytes of JSON
  // the buffer is over 1000 bytes after 11 sends: the 12th send drops the client
  for (let i = 0; i < 11; i++) transport.publish(subject, event);
  assert.equal(slow.socket.sent.length, 11);
  assert.equal(slow.socket.closed, undefined);
  assert.ok(slow.socket.reads < 11, `${slow.socket.reads} reads of bufferedAmount`);
  transport.publish(subject, event);
  assert.equal(slow.socket.sent.length, 11);
  assert.equal(slow.socket.closed, 1013);
  assert.equal(slow.c.open, false);
  assert.equal(hub.subjects, 0); // released
  assert.equal(await counter("twinmill_ws_clients_dropped_total"), 1);
  // a client whose network keeps up is never dropped, however much it is sent
  const fast = client();
  fast.subs.push(hub.subscribe(subject, fast.c));
  for (let i = 0; i < 1000; i++) {
    transport.publish(subject, event);
    fast.socket.backlog = 0;
  }
  assert.equal(fast.socket.sent.length, 1000);
  assert.equal(fast.socket.closed, undefined);
  assert.ok(fast.socket.reads <= 400, `${fast.socket.reads} reads of bufferedAmount`);
});
