import assert from "node:assert/strict";
import { inputError } from "./errors.ts";

Deno.test("errors: input-caused storage and URI errors map to 4xx", () => {
  assert.equal(inputError(new TypeError("Key too large for read (max 2049 bytes)"))?.status, 400);
  assert.equal(inputError(new TypeError("Value too large (max 65536 bytes)"))?.status, 413);
  assert.equal(inputError(new URIError("URI malformed"))?.status, 400);
  assert.equal(inputError(new TypeError("x is not a function")), undefined);
  assert.equal(inputError(new Error("Key too large")), undefined);
});
