import assert from "node:assert/strict";
import { transportConformance } from "../../tests/conformance/transport_conformance.ts";
import { memoryTransport } from "./memory.ts";

transportConformance("memory transport", () => Promise.resolve(memoryTransport()));

Deno.test("memory transport: gather ends as soon as every subscriber has replied", async () => {
  await using t = memoryTransport();
  using _a = t.subscribe("svc.all", (m) => m.respond(1));
  using _b = t.subscribe("svc.all", (m) => queueMicrotask(() => m.respond(2)));
  const replies = await t.gather("svc.all", null, { maxWaitMs: 60_000, until: () => false });
  assert.deepEqual(replies.sort(), [1, 2]);
});
