/**
 * A device's PUBLISH, the per-message path: rate, topic, ACL and body are checked, then the
 * message goes to the ingest, and aedes sends the PUBACK only when this hook calls back, i.e.
 * after the message is durable. Invalid messages of an MQTT 3.1.1 client are acknowledged but
 * diverted (see `rejections.ts`); an MQTT 5 client gets a negative PUBACK with a reason code
 * and string (see `reasons.ts`), and a reply on its Response Topic if it set one. Keep this
 * path free of extra allocations, closures and awaits: ingest is benchmarked through it.
 * @module
 */
import type { AuthorizePublishHandler, Client, PublishPacket } from "aedes";
import { Buffer } from "node:buffer";
import {
  isValidTwinId,
  parseDeviceBody,
  parseDeviceTopic,
  type RejectReason,
} from "../../../actors/validate.ts";
import type { JsonLimits } from "../../../actors/json_intake.ts";
import { readUserProperties } from "../../../actors/user_properties.ts";
import type { IngestPort } from "../../bridges/ingest.ts";
import { type Acl, deviceMayPublish } from "./acl.ts";
import type { MessageRate } from "./limits.ts";
import type { Notices } from "./notices.ts";
import type { ProvisioningRequests } from "./provisioning.ts";
import {
  isV5,
  ReasonCode,
  reasonCodeOf,
  reasonText,
  refuse,
  resendLater,
  respond,
} from "./reasons.ts";
import { divert, type Rejections } from "./rejections.ts";
import type { Sessions } from "./sessions.ts";
import { isSparkplugTopic, type SparkplugAttachment } from "../sparkplug/port.ts";
import { sparkplugPublish } from "../sparkplug/sides.ts";

/** What the publish path works with. */
export interface PublishParts {
  ingest: IngestPort;
  sessions: Sessions;
  acl: Acl;
  rejections: Rejections;
  notices: Notices;
  /** Per-connection message rate, if limited. */
  rate?: MessageRate;
  /** Requests of `$provision` clients, when provisioning over MQTT is on. */
  provisioning?: ProvisioningRequests;
  jsonLimits?: JsonLimits;
  /** The Sparkplug B host, when it takes `spBv1.0/…` messages (`src/connectors/sparkplug/`). */
  sparkplug?: SparkplugAttachment;
}

/** The `authorizePublish` hook of one broker. */
export function publishAuthorizer(p: PublishParts): AuthorizePublishHandler {
  const { ingest, sessions, acl, rejections, notices, rate, provisioning, jsonLimits, sparkplug } =
    p;
  const { log, metrics: m } = notices;

  /**
   * Whose diagnostics show a message with a bad topic: the connection's own twin when it has
   * one (a restricted client never speaks for others), else the twin the topic names
   * (`twins/cnc-10/telemetri`), else the client id.
   */
  const rejectedAs = (client: Client | null, topic: string, key: string): string => {
    const me = client ? sessions.identity(client)?.twin : undefined;
    if (me !== undefined) return me;
    if (acl.restricted(client)) return key;
    const named = topic.split("/", 2);
    return named[0] === "twins" && isValidTwinId(named[1] ?? "") ? named[1] : key;
  };

  /**
   * Reject a message of `who`: counted, kept for diagnostics and diverted; MQTT 3.1.1 has no
   * negative PUBACK, so it is acknowledged (as mosquitto does), an MQTT 5 client is told why.
   */
  const rejected = (
    client: Client | null,
    packet: PublishPacket,
    who: string,
    reason: RejectReason,
  ): void => {
    if (client && isV5(client)) {
      const text = reasonText(reason, packet.topic);
      refuse(client, packet, reasonCodeOf(reason), text);
      respond(client, packet, text);
    }
    rejections.reject(packet, who, reason);
  };

  return (client, packet, cb) => {
    const at = Date.now();
    const key = client?.id ?? "unknown";
    if (client && rate?.tripped(client)) return; // closing: not acknowledged, resent later
    const pkey = client ? sessions.provisioningKey(client) : undefined;
    if (pkey !== undefined && client) return provisioning!.request(client, pkey, packet, cb);
    if (rate && client && rate.over(client)) {
      m.rateLimited.inc({ what: "mqtt_message" });
      const twin = sessions.identity(client)?.twin ?? key;
      const v5 = isV5(client);
      if (notices.oncePerMinute(`rate\u0000${twin}`)) {
        log.warn(`device over its message rate; ${v5 ? "refused (0x97)" : "disconnected"}`, {
          device: twin,
        });
      }
      if (v5) {
        // MQTT 5: this message is refused (quota exceeded); the device may resend it later
        refuse(client, packet, ReasonCode.quotaExceeded, "over this connection's message rate");
        return cb(null);
      }
      // This message and later ones are never acknowledged (the device resends them after
      // reconnecting); the connection closes once the messages before it are acknowledged.
      rate.trip(client);
      return;
    }
    if (sparkplug && isSparkplugTopic(packet.topic)) {
      // Sparkplug B: the host application decides (and counts refusals); PUBACK once durable
      const me = client ? sessions.identity(client)?.twin : undefined;
      sparkplugPublish(sparkplug, packet, key, acl.restricted(client), me).then((out) => {
        if (!out.ok) {
          // MQTT 5: told why (0x95 is no PUBACK code: quota exceeded, as for telemetry)
          const code = out.code === 0x95 ? ReasonCode.quotaExceeded : out.code;
          if (client && isV5(client)) refuse(client, packet, code, `Sparkplug B: ${out.reason}`);
          divert(packet);
        }
        cb(null);
      }, (err) => {
        if (!client || !isV5(client)) {
          return cb(err instanceof Error ? err : new Error(String(err)));
        }
        resendLater(client, packet);
        cb(null);
      });
      return;
    }
    const t = parseDeviceTopic(packet.topic);
    if (typeof t === "string") {
      rejected(client, packet, rejectedAs(client, packet.topic, key), t);
      return cb(null);
    }
    if (acl.restricted(client)) {
      const me = client ? sessions.identity(client) : undefined;
      if (!deviceMayPublish(me, t.twin, t.kind)) {
        notices.aclDenied(me?.twin ?? key, "publish", packet.topic);
        rejected(client, packet, me?.twin ?? key, "acl_denied");
        return cb(null);
      }
    }
    // MQTT 5 user properties: bounded before the payload is read (over a limit: refused)
    const props = readUserProperties(packet.properties?.userProperties);
    if (props === "bad_property") {
      rejected(client, packet, t.twin, props);
      return cb(null);
    }
    const payload = packet.payload instanceof Uint8Array
      ? packet.payload
      : Buffer.from(String(packet.payload));
    const body = parseDeviceBody(t, payload, jsonLimits);
    if (typeof body === "string") {
      rejected(client, packet, t.twin, body);
      return cb(null);
    }
    m.messagesIn.inc({ kind: t.kind });
    if (client) sessions.seen(client, t.twin);
    const origin = { clientId: key, messageId: packet.qos > 0 ? packet.messageId : undefined };
    const submitted = ingest.submit(t, body, packet.topic, payload, at, origin, props);
    if (client && rate) rate.track(client, submitted);
    submitted.then(
      () => {
        cb(null);
        if (packet.properties?.responseTopic !== undefined && client) respond(client, packet);
      },
      (err) => {
        // not acknowledged: closing the connection makes the device resend
        m.messagesRejected.inc({ reason: "not_durable" });
        // once a minute for the node: on a stop with a backlog every waiting message fails
        if (notices.oncePerMinute("\u0000not_durable")) {
          log.warn("cannot make a message durable; disconnecting the device so it resends", {
            device: t.twin,
            error: err instanceof Error ? err.message : String(err),
            more:
              'further ones this minute are counted in twinmill_mqtt_messages_rejected_total{reason="not_durable"}',
          });
        }
        if (!client || !isV5(client)) {
          return cb(err instanceof Error ? err : new Error(String(err)));
        }
        resendLater(client, packet);
        cb(null);
      },
    );
  };
}
