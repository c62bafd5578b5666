import assert from "node:assert/strict";
import { numberField, scalarField } from "./kind.ts";
import { RuleFault } from "./errors.ts";

Deno.test("field accessors: scalars only, never prototype members", () => {
  const f = { t: 1, s: "x", b: false };
  assert.equal(scalarField(f, "t"), 1);
  assert.equal(scalarField(f, "b"), false);
  assert.equal(scalarField(f, "constructor"), undefined);
  assert.equal(scalarField(f, "__proto__"), undefined);
  assert.equal(numberField(f, "t"), 1);
  assert.equal(numberField(f, "nope"), undefined);
  assert.equal(numberField(f, "toString"), undefined);
  assert.throws(() => numberField(f, "s"), RuleFault);
  assert.throws(() => numberField(f, "b"), /Field "b" holds a boolean, not a number/);
});
