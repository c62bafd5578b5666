/**
 * A PUBLISH from the plant's broker, the per-message path of the bridge: the same checks as
 * the embedded broker's (`parseDeviceTopic`, `parseDeviceBody` with the node's JSON limits),
 * then the ingest, with the broker's packet id and DUP flag as the message's origin so that
 * a redelivery after a `kill -9` is recognised by its twin. Rejections are counted, kept for
 * diagnostics and logged once per device per minute, as the embedded broker does. Sparkplug B
 * messages (`spBv1.0/…`) go to the Sparkplug host application instead.
 * @module
 */
import { isValidTwinId, parseDeviceBody, parseDeviceTopic } from "../../../actors/validate.ts";
import type { JsonLimits } from "../../../actors/json_intake.ts";
import { readUserProperties } from "../../../actors/user_properties.ts";
import type { IngestPort } from "../../bridges/ingest.ts";
import type { Origin } from "../../bridges/message_key.ts";
import type { Rejections } from "../mqtt/rejections.ts";
import { isSparkplugTopic, type SparkplugAttachment } from "../sparkplug/port.ts";

/** The twin topics the bridge subscribes to. */
export const TWIN_FILTERS: readonly string[] = [
  "twins/+/telemetry",
  "twins/+/reported",
  "twins/+/status",
  "twins/+/commands/+/result",
];

/** What the intake works with. */
export interface IntakeParts {
  ingest: IngestPort;
  rejections: Rejections;
  /** Accepted device messages by kind (`twinmill_mqtt_messages_received_total`). */
  accepted(kind: string): void;
  /** The bridge's client id: the messages' origin. */
  clientId: string;
  jsonLimits?: JsonLimits;
  /** The Sparkplug B host application, when it takes `spBv1.0/` messages of this broker. */
  sparkplug?: SparkplugAttachment;
}

/** One PUBLISH as the bridge gets it. */
export interface BridgedPublish {
  topic: string;
  payload: Uint8Array;
  qos: number;
  messageId?: number;
  dup?: boolean;
  /** MQTT 5 properties of the PUBLISH (the broker passes the device's user properties on). */
  properties?: { userProperties?: unknown };
}

/**
 * Take one PUBLISH: a promise resolved once it is durable, or null when it is rejected (to be
 * acknowledged at once).
 */
export function intake(p: IntakeParts, packet: BridgedPublish, at: number): Promise<void> | null {
  const { topic, payload } = packet;
  const origin: Origin = {
    clientId: p.clientId,
    messageId: packet.qos > 0 ? packet.messageId : undefined,
    dup: packet.dup === true,
  };
  if (p.sparkplug && isSparkplugTopic(topic)) {
    // refused ones are acknowledged too (counted and logged by the Sparkplug host)
    return p.sparkplug.onMessage(topic, payload, origin).then(() => {});
  }
  const t = parseDeviceTopic(topic);
  if (typeof t === "string") {
    // whose diagnostics show it: the twin the topic names, else the bridge
    const named = topic.split("/", 2);
    const who = named[0] === "twins" && isValidTwinId(named[1] ?? "") ? named[1] : p.clientId;
    p.rejections.reject({ topic, retain: false }, who, t);
    return null;
  }
  // MQTT 5 user properties over their limits: rejected like a bad payload (and acknowledged)
  const props = readUserProperties(packet.properties?.userProperties);
  if (props === "bad_property") {
    p.rejections.reject({ topic, retain: false }, t.twin, props);
    return null;
  }
  const body = parseDeviceBody(t, payload, p.jsonLimits);
  if (typeof body === "string") {
    p.rejections.reject({ topic, retain: false }, t.twin, body);
    return null;
  }
  p.accepted(t.kind);
  return p.ingest.submit(t, body, topic, payload, at, origin, props);
}
