import assert from "node:assert/strict";
import { fingerprint, fnv1a, stableStringify } from "./hash.ts";

Deno.test("stableStringify sorts keys at every level and skips undefined", () => {
  assert.equal(
    stableStringify({ b: 1, a: [{ d: 2, c: null }], u: undefined }),
    '{"a":[{"c":null,"d":2}],"b":1}',
  );
});

Deno.test("fingerprint: key order does not matter, values do", () => {
  assert.equal(fingerprint({ a: 1, b: 2 }), fingerprint({ b: 2, a: 1 }));
  assert.notEqual(fingerprint({ a: 1, b: 2 }), fingerprint({ a: 1, b: 3 }));
  assert.match(fingerprint({}), /^[0-9a-f]{8}$/);
  assert.equal(fnv1a(""), "811c9dc5"); // the FNV-1a offset basis
  assert.equal(fnv1a("a"), "e40c292c"); // published FNV-1a test vector
});
