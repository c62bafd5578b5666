/**
 * MQTT 5 answers to a device's PUBLISH: reason codes and reason strings. An MQTT 3.1.1 client
 * has no negative PUBACK, so a refused message is acknowledged and diverted (`rejections.ts`);
 * an MQTT 5 client is told why instead: PUBACK (or PUBREC) `0x87` not authorized, `0x90` topic
 * name invalid, `0x97` quota exceeded (over the message rate, or a payload over 64 KiB), `0x99`
 * payload format invalid, with a reason string a person can read. (`0x95` packet too large is
 * no PUBACK code in MQTT 5, and clients treat it as a protocol error: a packet over the
 * Maximum Packet Size gets DISCONNECT `0x95` from aedes, see `broker.ts`.)
 *
 * aedes 2 answers an `authorizePublish` error of an MQTT 5 client itself, but always with
 * `0x87`; so a refusal here writes its own acknowledgement and marks the packet the way aedes
 * marks the ones it refused (`_notAuthorized`: neither acknowledged again nor routed) before
 * the hook calls back without an error. Like aedes's own `0x87`, the refusal is written at
 * once, possibly before the PUBACKs of earlier messages still being made durable.
 * @module
 */
import type { Client, PublishPacket } from "aedes";
import { Buffer } from "node:buffer";
import type { RejectReason } from "../../../actors/validate.ts";

/** The MQTT 5 reason codes this broker answers a PUBLISH with. */
export const ReasonCode = {
  unspecified: 0x80,
  notAuthorized: 0x87,
  topicNameInvalid: 0x90,
  quotaExceeded: 0x97,
  payloadFormatInvalid: 0x99,
} as const;

/** The aedes client fields this module reads (aedes 2 sets them on CONNECT). */
interface V5Client {
  version: number | null;
  closed: boolean;
  conn: { write(b: Uint8Array): unknown };
  /** False when the client asked for no reason strings [MQTT-3.1.2-29]. */
  _requestProblemInformation?: boolean;
}

/** True when the client connected with MQTT 5. */
export function isV5(client: Client): boolean {
  return (client as unknown as V5Client).version === 5;
}

/** The reason code of a rejected message. */
export function reasonCodeOf(reason: RejectReason): number {
  switch (reason) {
    case "acl_denied":
      return ReasonCode.notAuthorized;
    case "bad_topic":
    case "bad_id":
      return ReasonCode.topicNameInvalid;
    case "too_large":
      return ReasonCode.quotaExceeded;
    default:
      return ReasonCode.payloadFormatInvalid;
  }
}

const ID_RULE = "1-128 characters of A-Z a-z 0-9 _ - . :";

/** Why a message was rejected, for a person (the topic is the client's own, shortened). */
export function reasonText(reason: RejectReason, topic: string): string {
  const t = JSON.stringify(topic.length > 100 ? `${topic.slice(0, 100)}…` : topic);
  switch (reason) {
    case "bad_topic":
      return `topic ${t} is not a twin topic: publish to twins/{id}/telemetry, ` +
        "twins/{id}/reported, twins/{id}/status or twins/{id}/commands/{cmdId}/result";
    case "bad_id":
      return `the twin id in topic ${t} is not valid: an id is ${ID_RULE}`;
    case "acl_denied":
      return `this client may not publish to ${t}: a device publishes to its own twin's topics`;
    case "too_large":
      return "payload is over the 64 KiB limit";
    case "not_json":
      return "payload is not UTF-8 JSON";
    case "not_object":
      return "payload must be a JSON object";
    case "bad_field":
      return "telemetry fields must be numbers, booleans or strings (names of 1-128 " +
        'characters); "ts" a number of ms since the epoch';
    case "bad_status":
      return 'status must be "online" or "offline"';
    case "payload_too_deep":
      return "JSON payload is nested too deeply";
    case "too_many_keys":
      return "JSON payload has too many keys";
    case "string_too_long":
      return "JSON payload has a string over the length limit";
    case "array_too_long":
      return "JSON payload has an array over the length limit";
    case "bad_number":
      return "JSON payload has a number out of range";
    case "bad_key":
      return "JSON payload has a key that is not allowed";
    case "bad_property":
      return "user properties over the limits: at most 16, names of 1-64 bytes, values of " +
        "up to 256 bytes";
    default:
      return `message rejected: ${reason}`;
  }
}

const encoder = new TextEncoder();
/** Longest reason string sent (bytes): well within any sane Maximum Packet Size. */
const MAX_REASON_BYTES = 512;

function varintSize(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

function writeVarint(b: Uint8Array, at: number, n: number): number {
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    b[at++] = byte;
  } while (n > 0);
  return at;
}

/**
 * An MQTT 5 PUBACK (QoS 1) or PUBREC (QoS 2) with a reason code and, if given, a Reason
 * String property (cut to 512 bytes at a character boundary).
 */
export function encodeAck(
  qos: 1 | 2,
  messageId: number,
  reasonCode: number,
  reason?: string,
): Uint8Array {
  let text = reason === undefined ? undefined : encoder.encode(reason);
  if (text && text.length > MAX_REASON_BYTES) {
    let end = MAX_REASON_BYTES;
    while (end > 0 && (text[end] & 0xc0) === 0x80) end--; // not inside a UTF-8 sequence
    text = text.subarray(0, end);
  }
  const props = text ? 3 + text.length : 0;
  const remaining = 3 + varintSize(props) + props;
  const b = new Uint8Array(1 + varintSize(remaining) + remaining);
  b[0] = qos === 1 ? 0x40 : 0x50;
  let i = writeVarint(b, 1, remaining);
  b[i++] = messageId >> 8;
  b[i++] = messageId & 0xff;
  b[i++] = reasonCode;
  i = writeVarint(b, i, props);
  if (text) {
    b[i++] = 0x1f; // Reason String
    b[i++] = text.length >> 8;
    b[i++] = text.length & 0xff;
    b.set(text, i);
  }
  return b;
}

/**
 * Refuse an MQTT 5 client's PUBLISH: answer QoS 1/2 with `reasonCode` and `reason` (unless
 * the client asked for no reason strings), and mark the packet so that aedes neither
 * acknowledges nor routes it once the hook calls back without an error.
 */
export function refuse(
  client: Client,
  packet: PublishPacket,
  reasonCode: number,
  reason: string,
): void {
  (packet as { _notAuthorized?: boolean })._notAuthorized = true;
  const c = client as unknown as V5Client;
  if (packet.qos === 0 || c.closed || packet.messageId === undefined) return;
  const text = c._requestProblemInformation === false ? undefined : reason;
  c.conn.write(encodeAck(packet.qos, packet.messageId, reasonCode, text));
}

/**
 * An MQTT 5 client's PUBLISH that could not be made durable: not acknowledged (aedes would
 * answer the hook's error with PUBACK `0x87`) and not routed; the connection is closed with
 * DISCONNECT `0x80` so that the device resends it, as with MQTT 3.1.1. Call back without an
 * error after this.
 */
export function resendLater(client: Client, packet: PublishPacket): void {
  (packet as { _notAuthorized?: boolean })._notAuthorized = true;
  client.disconnect({
    reasonCode: ReasonCode.unspecified,
    properties: { reasonString: "a message could not be made durable; resend it" },
  });
}

/**
 * Request/response [MQTT-4.10]: a PUBLISH that carries a Response Topic gets, once it is
 * durable (or refused), a reply on that topic with the same Correlation Data, to that client
 * only (QoS 0): `{"accepted": true}` or `{"accepted": false, "reason": "..."}`.
 */
export function respond(client: Client, packet: PublishPacket, refusal?: string): void {
  const to = packet.properties?.responseTopic;
  if (to === undefined || (client as unknown as V5Client).closed) return;
  const correlationData = packet.properties?.correlationData;
  const body = refusal === undefined ? { accepted: true } : { accepted: false, reason: refusal };
  client.publish({
    cmd: "publish",
    topic: to,
    payload: Buffer.from(JSON.stringify(body)),
    qos: 0,
    retain: false,
    dup: false,
    properties: correlationData === undefined ? {} : { correlationData },
  }, () => {});
}
