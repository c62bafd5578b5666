import assert from "node:assert/strict";
import { messageKey, originKey } from "./message_key.ts";

const payload = new TextEncoder().encode('{"temp":21}');
const topic = "twins/t1/telemetry";

Deno.test("originKey: none without a packet id; a first delivery of a broker's session is negative, its redelivery positive and the same", () => {
  assert.equal(originKey(undefined, topic, payload), undefined);
  assert.equal(originKey({ clientId: "c" }, topic, payload), undefined);
  const k = messageKey({ clientId: "c", messageId: 7 }, topic, payload);
  assert.ok(k > 0 && Number.isSafeInteger(k));
  // a device's own publish (embedded broker): may be a resend, checked
  assert.equal(originKey({ clientId: "c", messageId: 7 }, topic, payload), k);
  // the bridge: DUP = may have been applied, checked; not DUP = first delivery, only remembered
  assert.equal(originKey({ clientId: "c", messageId: 7, dup: true }, topic, payload), k);
  assert.equal(originKey({ clientId: "c", messageId: 7, dup: false }, topic, payload), -k);
  // another packet id, topic, payload or client: another key
  assert.notEqual(messageKey({ clientId: "c", messageId: 8 }, topic, payload), k);
  assert.notEqual(messageKey({ clientId: "d", messageId: 7 }, topic, payload), k);
  assert.notEqual(messageKey({ clientId: "c", messageId: 7 }, "twins/t2/telemetry", payload), k);
});
