import assert from "node:assert/strict";
import { isDiscardedSocketError } from "./socket_errors.ts";

Deno.test("isDiscardedSocketError: a reset read or write of a socket, nothing else", () => {
  const sys = (code: string, syscall?: string) =>
    Object.assign(new Error(`x ${code}`), { code, syscall });
  assert.equal(isDiscardedSocketError(sys("ECONNRESET", "read")), true);
  assert.equal(isDiscardedSocketError(sys("EPIPE", "write")), true);
  assert.equal(isDiscardedSocketError(sys("ECONNABORTED", "read")), true);
  assert.equal(isDiscardedSocketError(sys("ECONNREFUSED", "connect")), false);
  assert.equal(isDiscardedSocketError(sys("ECONNRESET")), false);
  assert.equal(isDiscardedSocketError(sys("ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE")), false);
  assert.equal(isDiscardedSocketError(new TypeError("x is undefined")), false);
  assert.equal(isDiscardedSocketError(undefined), false);
  assert.equal(isDiscardedSocketError("ECONNRESET"), false);
});
