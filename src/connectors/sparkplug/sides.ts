/**
 * The embedded broker as a side of the Sparkplug host: it publishes through aedes, and its
 * publish hook hands over `spBv1.0/…` messages. (The bridge attaches itself through
 * `port.ts` directly.)
 * @module
 */
import { Buffer } from "node:buffer";
import type {
  SparkplugAttachment,
  SparkplugHostPort,
  SparkplugOrigin,
  SparkplugOutcome,
} from "./port.ts";

/** What the embedded side needs of aedes: its internal publish. */
export interface AedesPublisher {
  publish(
    packet: {
      cmd: "publish";
      topic: string;
      payload: Buffer;
      qos: 0 | 1;
      retain: boolean;
      dup: boolean;
    },
    done: (err?: Error) => void,
  ): void;
}

/** Attach the embedded broker; its `connected()`, once the broker listens, publishes STATE online. */
export function embeddedSide(host: SparkplugHostPort, aedes: AedesPublisher): SparkplugAttachment {
  const sp = host.attach({
    name: "mqtt",
    publish: (topic, payload, o) =>
      new Promise<void>((resolve, reject) =>
        aedes.publish(
          {
            cmd: "publish",
            topic,
            payload: Buffer.from(payload),
            qos: o.qos,
            retain: o.retain,
            dup: false,
          },
          (err?: Error) => (err ? reject(err) : resolve()),
        )
      ),
  });
  return sp;
}

/**
 * The embedded broker's publish hook for a Sparkplug topic: resolves once durable (then
 * PUBACK) with the outcome; a refused message is to be diverted (never routed on).
 * `restricted`: the client is held to its own twin's topics (`twin` its identity).
 */
export function sparkplugPublish(
  sp: SparkplugAttachment,
  packet: { topic: string; payload: unknown; qos: number; messageId?: number },
  clientId: string,
  restricted: boolean,
  twin: string | undefined,
): Promise<SparkplugOutcome> {
  const payload = packet.payload instanceof Uint8Array
    ? packet.payload
    : Buffer.from(String(packet.payload ?? ""));
  const origin: SparkplugOrigin = {
    clientId,
    messageId: packet.qos > 0 ? packet.messageId : undefined,
  };
  return sp.onMessage(packet.topic, payload, origin, { restricted, twin });
}
