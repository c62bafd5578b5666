import assert from "node:assert/strict";
import { RateLimiter } from "./rate_limit.ts";

Deno.test("rate limiter: a burst, then the rate; keys are independent; bounded", () => {
  let now = 0;
  const l = new RateLimiter({ rate: 10, burst: 20, maxKeys: 2, now: () => now });
  for (let i = 0; i < 20; i++) assert.equal(l.take("a"), 0);
  assert.equal(l.take("a"), 1, "empty: retry after a second at most");
  assert.equal(l.take("b"), 0, "another key has its own bucket");
  now += 500; // 5 tokens back
  for (let i = 0; i < 5; i++) assert.equal(l.take("a"), 0);
  assert.ok(l.take("a") > 0);
  l.take("c"); // evicts the least recently used ("b")
  for (let i = 0; i < 19; i++) assert.equal(l.take("b"), 0, "b starts full again");
});

Deno.test("rate limiter: a refunded token can be taken again, never past the burst", () => {
  const l = new RateLimiter({ rate: 0.001, burst: 2, now: () => 0 });
  assert.equal(l.take("a"), 0);
  assert.equal(l.take("a"), 0);
  assert.ok(l.take("a") > 0);
  l.refund("a");
  assert.equal(l.take("a"), 0);
  l.refund("a");
  l.refund("a");
  l.refund("a");
  assert.equal(l.take("a"), 0);
  assert.equal(l.take("a"), 0);
  assert.ok(l.take("a") > 0, "refunds stop at the burst");
});

Deno.test("rate limiter: the least recently used key is evicted, also after runs of one key", () => {
  const l = new RateLimiter({ rate: 0.001, burst: 3, maxKeys: 2, now: () => 0 });
  l.take("a");
  l.take("b");
  l.take("b"); // b twice in a row: still the newest
  l.take("a"); // a is the newest now, b the oldest
  l.take("c"); // evicts b, keeps a
  assert.equal(l.take("a"), 0, "a kept its bucket: its third token");
  assert.ok(l.take("a") > 0, "a is empty");
  for (let i = 0; i < 3; i++) assert.equal(l.take("b"), 0, "b was evicted: a full bucket again");
});
