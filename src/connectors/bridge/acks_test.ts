import assert from "node:assert/strict";
import { AckQueue, MAX_WAITING_ACKS } from "./acks.ts";

/** A promise with its resolve/reject. */
function deferred() {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function sink() {
  const sent: number[] = [];
  const failed: string[] = [];
  return {
    sent,
    failed,
    puback: (id: number) => void sent.push(id),
    fail: (reason: string) => void failed.push(reason),
  };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("acks: each PUBACK once its message is durable, in the order the messages came", async () => {
  const s = sink();
  const q = new AckQueue(s);
  const a = deferred(), b = deferred();
  q.push(1, a.promise);
  q.push(2, null); // rejected: acknowledged, but after 1
  q.push(3, b.promise);
  b.resolve();
  await tick();
  assert.deepEqual(s.sent, []);
  a.resolve();
  await tick();
  assert.deepEqual(s.sent, [1, 2, 3]);
  assert.equal(q.size, 0);
  q.push(4, null);
  assert.deepEqual(s.sent, [1, 2, 3, 4]);
});

Deno.test("acks: a message that cannot be made durable is never acknowledged, nor any after it; the connection fails once", async () => {
  const s = sink();
  const q = new AckQueue(s);
  const a = deferred(), b = deferred(), c = deferred();
  q.push(1, a.promise);
  q.push(2, b.promise);
  q.push(3, c.promise);
  a.resolve();
  b.reject(new Error("disk full"));
  c.reject(new Error("disk full"));
  await tick();
  assert.deepEqual(s.sent, [1]);
  assert.deepEqual(s.failed, ["a message could not be made durable"]);
  q.push(4, null); // closed: nothing more on this connection
  assert.deepEqual(s.sent, [1]);
});

Deno.test("acks: a closed queue (connection gone) sends nothing more; the broker redelivers", async () => {
  const s = sink();
  const q = new AckQueue(s);
  const a = deferred();
  q.push(1, a.promise);
  q.close();
  a.resolve();
  await tick();
  assert.deepEqual(s.sent, []);
  assert.deepEqual(s.failed, []);
});

Deno.test("acks: past MAX_WAITING_ACKS unacknowledged messages the connection fails", () => {
  const s = sink();
  const q = new AckQueue(s);
  const never = new Promise<void>(() => {});
  for (let i = 0; i < MAX_WAITING_ACKS; i++) q.push(i % 65535 + 1, never);
  assert.deepEqual(s.failed, []);
  q.push(1, never);
  assert.deepEqual(s.failed, ["too many unacknowledged messages from the broker"]);
});

Deno.test("acks: onRoom waits until fewer than the limit wait; never once closed", async () => {
  const s = sink();
  const q = new AckQueue(s);
  const a = deferred(), b = deferred();
  q.push(1, a.promise);
  q.push(2, b.promise);
  let room = 0;
  q.onRoom(3, () => room++);
  assert.equal(room, 1, "2 waiting, below 3: at once");
  q.onRoom(2, () => room++);
  assert.equal(room, 1, "2 waiting: not below 2");
  b.resolve(); // 2 is durable, but waits behind 1
  await tick();
  assert.equal(room, 1);
  a.resolve();
  await tick();
  assert.deepEqual(s.sent, [1, 2]);
  assert.equal(room, 2, "room once they went out");
  const c = deferred();
  q.push(3, c.promise);
  q.onRoom(1, () => room++);
  q.close();
  c.resolve();
  await tick();
  assert.equal(room, 2, "a closed queue calls no waiter");
});
