import assert from "node:assert/strict";
import { DurableKeys } from "./resends.ts";

Deno.test("durable keys: remembered up to the bound, the oldest forgotten first", () => {
  const k = new DurableKeys(3);
  for (const key of [1, 2, 3, 2]) k.add(key);
  assert.equal(k.size, 3);
  k.add(4); // 1 goes
  assert.deepEqual([1, 2, 3, 4].map((x) => k.has(x)), [false, true, true, true]);
  assert.equal(k.size, 3);
});
