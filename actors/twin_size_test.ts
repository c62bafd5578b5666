import assert from "node:assert/strict";
import { overSizeLimit, twinSize } from "./twin_size.ts";
import { emptyTwin, type TwinState } from "./twin.ts";

const state = (patch: Partial<TwinState>): TwinState => ({ ...emptyTwin("t", 0).state, ...patch });

Deno.test("twin size: bytes of JSON (UTF-8) of attributes, reported, desired and their field metadata", () => {
  const empty = twinSize(state({}));
  assert.equal(empty, 5 * 2); // five "{}"
  const s = state({ reported: { a: "é€😀" } }); // 2 + 3 + 4 bytes
  assert.equal(twinSize(s) - empty, '"a":""'.length + 9);
  const meta = state({
    metadata: { reported: { a: { ts: 1 } }, desired: {}, createdAt: 0, updatedAt: 0 },
  });
  assert.equal(twinSize(meta) - empty, '"a":{"ts":1}'.length);
  // delta is derived from desired and not counted
  assert.equal(twinSize(state({ delta: { x: "y".repeat(100) } })), empty);
});

Deno.test("size limit: refused when over it and growing; shrinking or equal is taken", () => {
  const small = state({ desired: { a: "x".repeat(10) } });
  const big = state({ desired: { a: "x".repeat(1000) } });
  const bigger = state({ desired: { a: "x".repeat(1000), b: 1 } });
  assert.equal(overSizeLimit(small, big, 2000), null);
  assert.equal(overSizeLimit(small, big, 500), twinSize(big));
  assert.equal(overSizeLimit(bigger, big, 500), null); // shrinks
  assert.equal(overSizeLimit(big, state({ desired: { a: "y".repeat(1000) } }), 500), null);
  assert.equal(overSizeLimit(big, bigger, 500), twinSize(bigger));
});

Deno.test("size limit: a state that cannot be serialized is infinitely large", () => {
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  const s = state({ desired: cycle });
  assert.equal(twinSize(s), Infinity);
  assert.equal(overSizeLimit(state({}), s, 1_000_000), Infinity);
});
