/**
 * The embedded MQTT broker (aedes on `node:net`), behind a small seam so it can be swapped
 * (aedes 1.x speaks MQTT 3.1.1; 2.x adds MQTT 5).
 *
 * Device messages are validated in `authorizePublish` and handed to the ingest; aedes sends
 * the PUBACK only when that hook calls back, i.e. after the message is durable. Invalid
 * messages are acknowledged (as mosquitto does with denied publishes under MQTT 3.1.1, so a
 * device does not retry forever) but dropped: they never reach a twin, a subscriber or
 * InfluxDB; they are counted by reason and logged once per device per minute.
 * @module
 */
import { Aedes, type AuthorizePublishHandler } from "aedes";
import { createServer, type Server } from "node:net";
import { Buffer } from "node:buffer";
import { parseDeviceBody, parseDeviceTopic, type RejectReason } from "../../actors/validate.ts";
import type { IngestPort } from "./ingest.ts";
import type { Logger } from "../obs/log.ts";
import type { Metrics } from "../obs/metrics.ts";

/** A running broker. */
export interface Broker extends AsyncDisposable {
  port: number;
  /** Publish a twin's desired state to its device: retained, QoS 1. */
  publishDesired(id: string, desired: unknown): Promise<void>;
}

/** Options of {@linkcode startBroker}. */
export interface BrokerOptions {
  host: string;
  port: number;
  ingest: IngestPort;
  logger: Logger;
  metrics: Metrics;
}

const DROP_TOPIC = "$SYS/twinmill/rejected";
const DROP_LEVELS = DROP_TOPIC.split("/");

/** True when an MQTT topic filter matches the topic rejected messages are diverted to. */
export function matchesDropTopic(filter: string): boolean {
  const f = filter.split("/");
  if (f[0] !== "$SYS") return false; // wildcards at the first level never match "$" topics
  for (let i = 1; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= DROP_LEVELS.length || (f[i] !== "+" && f[i] !== DROP_LEVELS[i])) return false;
  }
  return f.length === DROP_LEVELS.length;
}

/** Start the embedded broker. */
export async function startBroker(o: BrokerOptions): Promise<Broker> {
  const { logger: log, metrics: m } = o;
  const lastLogged = new Map<string, number>();

  const reject = (
    packet: { topic: string; retain: boolean },
    key: string,
    reason: RejectReason,
  ) => {
    m.messagesRejected.inc({ reason });
    const now = Date.now();
    if ((lastLogged.get(key) ?? 0) + 60_000 <= now) {
      if (lastLogged.size > 10_000) lastLogged.clear();
      lastLogged.set(key, now);
      log.warn("device message rejected", {
        device: key,
        topic: packet.topic.slice(0, 200),
        reason,
      });
    }
    packet.topic = DROP_TOPIC; // $SYS topics are not matched by "#"; nobody subscribes here
    packet.retain = false;
  };

  const authorizePublish: AuthorizePublishHandler = (client, packet, cb) => {
    const at = Date.now();
    const key = client?.id ?? "unknown";
    const t = parseDeviceTopic(packet.topic);
    if (typeof t === "string") {
      reject(packet, key, t);
      return cb(null);
    }
    const payload = packet.payload instanceof Uint8Array
      ? packet.payload
      : Buffer.from(String(packet.payload));
    const body = parseDeviceBody(t, payload);
    if (typeof body === "string") {
      reject(packet, t.twin, body);
      return cb(null);
    }
    m.messagesIn.inc({ kind: t.kind });
    const origin = { clientId: key, messageId: packet.qos > 0 ? packet.messageId : undefined };
    o.ingest.submit(t, body, packet.topic, payload, at, origin).then(
      () => cb(null),
      (err) => {
        // MQTT 3.1.1 has no negative PUBACK: closing the connection makes the device resend
        m.messagesRejected.inc({ reason: "not_durable" });
        log.warn("cannot make a message durable; disconnecting the device so it resends", {
          device: t.twin,
          error: err instanceof Error ? err.message : String(err),
        });
        cb(err instanceof Error ? err : new Error(String(err)));
      },
    );
  };

  const aedes = await Aedes.createBroker({
    authorizePublish,
    // nobody may watch the diverted rejects (negative SUBACK, 0x80)
    authorizeSubscribe: (_client, sub, cb) => cb(null, matchesDropTopic(sub.topic) ? null : sub),
    queueLimit: 1000,
    // A subscriber that stops reading must not stall delivery, and with it the PUBACKs of
    // every device (aedes waits for delivery before reading a connection's next packets).
    drainTimeout: 5000,
    concurrency: 1000,
  });
  aedes.on("client", () => m.mqttConnections.inc());
  aedes.on("clientDisconnect", () => m.mqttConnections.dec());

  const server: Server = createServer(aedes.handle);
  await new Promise<void>((resolve, rejectP) => {
    server.once("error", rejectP);
    server.listen(o.port, o.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : o.port;

  return {
    port,
    publishDesired(id, desired) {
      return new Promise((resolve) => {
        aedes.publish(
          {
            cmd: "publish",
            topic: `twins/${id}/desired`,
            payload: Buffer.from(JSON.stringify(desired)),
            qos: 1,
            retain: true,
            dup: false,
          },
          (err?: Error) => {
            if (err) log.error("cannot publish desired state to device", { device: id, err });
            resolve();
          },
        );
      });
    },
    async [Symbol.asyncDispose]() {
      const closed = new Promise<void>((r) => server.close(() => r()));
      await new Promise<void>((r) => aedes.close(() => r()));
      await closed;
    },
  };
}
