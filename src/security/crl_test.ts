import assert from "node:assert/strict";
import { crlSerials, looksLikeCrl } from "./crl.ts";

Deno.test("crl: malformed input is refused with a reason, never half-read", () => {
  assert.equal(looksLikeCrl("60C2\n0A"), false);
  assert.ok(looksLikeCrl("-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----"));
  assert.throws(() => crlSerials("-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----"), /CRL/);
  assert.throws(() => crlSerials(new Uint8Array([0x30, 0x82, 0x10])), /truncated/);
  assert.throws(() => crlSerials("not a crl"), /Not a PEM CRL/);
});
