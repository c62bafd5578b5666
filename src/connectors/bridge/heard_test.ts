import assert from "node:assert/strict";
import { HeardDevices } from "./heard.ts";

Deno.test("heard devices: last message time per device, the least recently heard forgotten when full", () => {
  const h = new HeardDevices(3);
  h.heard("a", 1);
  h.heard("b", 2);
  h.heard("c", 3);
  h.heard("a", 4); // a is the most recent now
  h.heard("d", 5); // full: b goes
  assert.equal(h.size, 3);
  assert.equal(h.lastMessageAt("a"), 4);
  assert.equal(h.lastMessageAt("b"), undefined);
  assert.equal(h.lastMessageAt("c"), 3);
  assert.equal(h.lastMessageAt("d"), 5);
  h.heard("e", 6); // then c
  assert.equal(h.lastMessageAt("c"), undefined);
  assert.equal(h.size, 3);
});
