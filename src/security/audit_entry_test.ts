import assert from "node:assert/strict";
import { redact, REDACTED } from "./audit_entry.ts";

Deno.test("redact copies, keeps only scalar values, and leaves the caller's object alone", () => {
  const detail = { password: "p", n: 1, bad: Number.NaN, obj: { a: 1 }, list: [1] } as Record<
    string,
    unknown
  >;
  assert.deepEqual(redact(detail), { password: REDACTED, n: 1 });
  assert.equal(detail.password, "p");
  assert.equal(redact(null), undefined);
  assert.equal(redact(["x"]), undefined);
});
