import assert from "node:assert/strict";
import { INTEREST_TTL_MS, withEventInterest } from "./interest.ts";
import { memoryTransport } from "../transport/memory.ts";
import { ManualClock, settle } from "../runtime/clock.ts";
import { subjects } from "../transport/subjects.ts";
import type { Transport } from "../transport/port.ts";

/** Two nodes on one memory "NATS"; counts what reaches it on event subjects. */
function cluster() {
  const inner = memoryTransport();
  const onWire: string[] = [];
  const shared: Transport = {
    publish: (s, d) => (s.startsWith("tm.evt.") && onWire.push(s), inner.publish(s, d)),
    subscribe: (s, cb) => inner.subscribe(s, cb),
    request: (s, d, o) => inner.request(s, d, o),
    gather: (s, d, o) => inner.gather(s, d, o),
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
  const clock = new ManualClock(1000);
  const a = withEventInterest(shared, { nodeId: "a", clock });
  const b = withEventInterest(shared, { nodeId: "b", clock });
  return {
    a,
    b,
    clock,
    onWire,
    async [Symbol.asyncDispose]() {
      await a[Symbol.asyncDispose]();
      await b[Symbol.asyncDispose]();
      await inner[Symbol.asyncDispose]();
    },
  };
}

const evt = (id: string) => ({ type: "telemetry", twin: id, version: 1, ts: 0, data: {} });

Deno.test("event interest: events go on the wire only while some node streams them", async () => {
  await using c = cluster();
  c.b.publish(subjects.event("telemetry", "press-1"), evt("press-1"));
  assert.deepEqual(c.onWire, [], "nobody streams: nothing published");

  const got: unknown[] = [];
  const sub = c.a.subscribe(subjects.event("telemetry", "press-1"), (m) => got.push(m.data));
  await settle();
  c.b.publish(subjects.event("telemetry", "press-1"), evt("press-1"));
  c.b.publish(subjects.event("telemetry", "press-2"), evt("press-2"));
  c.b.publish(subjects.event("state", "press-1"), evt("press-1"));
  await settle();
  assert.equal(got.length, 1, "node a's stream sees node b's event");
  assert.deepEqual(c.onWire, ["tm.evt.telemetry.press-1"]);

  sub.unsubscribe();
  await settle();
  c.b.publish(subjects.event("telemetry", "press-1"), evt("press-1"));
  assert.equal(c.onWire.length, 1, "after the last stream closed: nothing more");
});

Deno.test("event interest: wildcards match; other subjects pass through untouched", async () => {
  await using c = cluster();
  const s1 = c.a.subscribe(subjects.eventsOf("alarm", "*"), () => {});
  const s2 = c.a.subscribe(subjects.eventsOf("*", "mixer.2"), () => {});
  await settle();
  c.b.publish(subjects.event("alarm", "any"), evt("any"));
  c.b.publish(subjects.event("state", "mixer.2"), evt("mixer.2"));
  c.b.publish(subjects.event("state", "other"), evt("other"));
  assert.deepEqual(c.onWire, ["tm.evt.alarm.any", "tm.evt.state.mixer%2E2"]);
  assert.equal(c.b.wanted(), 2);
  let downlinks = 0;
  using _d = c.a.subscribe(subjects.downlinkAll, () => downlinks++);
  c.b.publish(subjects.downlink("x"), {});
  await settle();
  assert.equal(downlinks, 1);
  s1.unsubscribe();
  s2.unsubscribe();
});

Deno.test("event interest: a silent node's interest expires; a new node learns it at start", async () => {
  await using c = cluster();
  using _s = c.a.subscribe(subjects.eventsOf("telemetry", "*"), () => {});
  await settle();
  // a third node starting later asks, and learns a's interest
  const late = withEventInterest(
    { ...c.b, [Symbol.asyncDispose]: () => Promise.resolve() },
    { nodeId: "late", clock: c.clock },
  );
  await settle();
  assert.equal(late.wanted(), 1);
  // node a dies silently (its timer stops); its interest lapses after the TTL
  await c.a[Symbol.asyncDispose]();
  await c.clock.advance(INTEREST_TTL_MS + 5_000);
  assert.equal(c.b.wanted(), 0);
  await late[Symbol.asyncDispose]();
});
