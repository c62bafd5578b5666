import assert from "node:assert/strict";
import { RateLimiter } from "../../security/rate_limit.ts";
import { AuthThrottle, connectionsFull, MessageRate } from "./limits.ts";
import { fakeClient } from "./testing.ts";

Deno.test("limits: the connection limit, when there is one", () => {
  assert.equal(connectionsFull(1_000_000, undefined), false);
  assert.equal(connectionsFull(2, 3), false);
  assert.equal(connectionsFull(3, 3), true);
});

Deno.test("limits: auth throttling takes a token per attempt; a success gives it back", () => {
  const now = 0;
  const t = new AuthThrottle({
    source: new RateLimiter({ rate: 1, burst: 3, now: () => now }),
    identity: new RateLimiter({ rate: 1, burst: 2, now: () => now }),
  });
  assert.equal(t.take("10.0.0.1", "u:p1"), null);
  assert.equal(t.take("10.0.0.1", "u:p1"), null);
  assert.equal(t.take("10.0.0.1", "u:p1"), "identity", "the identity's burst is spent");
  assert.equal(t.take("10.0.0.1", "u:p2"), null, "the source token was given back");
  assert.equal(t.take("10.0.0.1", undefined), "source", "the source's burst is spent");
  t.refund("10.0.0.1", "u:p2"); // that attempt succeeded
  assert.equal(t.take("10.0.0.1", "u:p2"), null);
  assert.equal(t.take("10.0.0.2", undefined), null, "another source has its own bucket");
});

Deno.test("limits: a connection over its message rate closes after its messages in flight", async () => {
  const rate = new MessageRate(new RateLimiter({ rate: 0.001, burst: 2, now: () => 0 }));
  const f = fakeClient("p1");
  assert.equal(rate.over(f.client), false);
  assert.equal(rate.over(f.client), false);
  let durable!: () => void;
  const submitted = new Promise<void>((r) => durable = r);
  rate.track(f.client, submitted);
  assert.equal(rate.over(f.client), true);
  assert.equal(rate.tripped(f.client), false);
  rate.trip(f.client);
  assert.equal(rate.tripped(f.client), true);
  for (let i = 0; i < 10; i++) await Promise.resolve();
  assert.equal(f.closed, false, "still making a message durable");
  durable();
  await submitted;
  for (let i = 0; i < 10 && !f.closed; i++) await Promise.resolve();
  assert.equal(f.closed, true);
  assert.equal(rate.over(fakeClient("p2").client), false, "connections have their own rate");
});
