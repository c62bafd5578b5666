import assert from "node:assert/strict";
import { encodeAck, ReasonCode, reasonCodeOf, reasonText } from "./reasons.ts";

Deno.test("reasons: a PUBACK with a reason code and string, byte for byte", () => {
  assert.deepEqual(
    [...encodeAck(1, 0x1234, 0x99, "x")],
    [0x40, 8, 0x12, 0x34, 0x99, 4, 0x1f, 0, 1, 0x78],
  );
  // PUBREC, no reason string (the client asked for none)
  assert.deepEqual([...encodeAck(2, 7, 0x87)], [0x50, 4, 0, 7, 0x87, 0]);
});

Deno.test("reasons: a long reason string is cut at a character boundary, lengths stay right", () => {
  const b = encodeAck(1, 1, 0x95, "é".repeat(400)); // 800 bytes of 2-byte characters
  // type, remaining length (2), id (2), code, property length (2), 0x1f, string length (2)
  assert.deepEqual(b.length - 11, 512);
  assert.deepEqual((b[1] & 0x7f) + (b[2] << 7), b.length - 3);
  assert.deepEqual(
    new TextDecoder("utf-8", { fatal: true }).decode(b.subarray(11)),
    "é".repeat(256),
  );
});

Deno.test("reasons: codes and strings of the reject reasons", () => {
  assert.deepEqual(reasonCodeOf("not_json"), ReasonCode.payloadFormatInvalid);
  assert.deepEqual(reasonCodeOf("too_many_keys"), ReasonCode.payloadFormatInvalid);
  assert.deepEqual(reasonCodeOf("too_large"), ReasonCode.quotaExceeded);
  assert.deepEqual(reasonCodeOf("acl_denied"), ReasonCode.notAuthorized);
  assert.deepEqual(reasonCodeOf("bad_id"), ReasonCode.topicNameInvalid);
  assert.deepEqual(
    reasonText("bad_id", "twins/bad id!/telemetry"),
    'the twin id in topic "twins/bad id!/telemetry" is not valid: an id is 1-128 characters of ' +
      "A-Z a-z 0-9 _ - . :",
  );
});
