import assert from "node:assert/strict";
import { attributeNameProblem, isReservedAttributeName } from "./attributes.ts";

Deno.test("attribute names: prototype machinery and bad lengths are refused, with the reason", () => {
  for (const k of ["__proto__", "constructor", "prototype"]) {
    assert.ok(isReservedAttributeName(k));
    assert.match(attributeNameProblem(k)!, /reserved/);
  }
  assert.match(attributeNameProblem("")!, /1-128/);
  assert.match(attributeNameProblem("x".repeat(129))!, /1-128/);
  for (const k of ["site", "type", "Constructor", "proto", "__proto", "toString"]) {
    assert.equal(attributeNameProblem(k), undefined, k);
  }
});
