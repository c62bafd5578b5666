/**
 * The bridge's acknowledgements on one MQTT.js connection: MQTT.js is told not to send a
 * PUBACK ({@linkcode HELD}), and the connection's {@linkcode AckQueue} sends each one itself,
 * in order, once its message is durable — on that same connection only (a PUBACK of an earlier
 * connection's packet id would acknowledge another message). A message that cannot be made
 * durable drops the connection, so that the broker redelivers.
 * @module
 */
import type { MqttClient } from "mqtt";
import type { Logger } from "../../obs/log.ts";
import type { Metrics } from "../../obs/metrics.ts";
import { AckQueue } from "./acks.ts";

/** Handed to MQTT.js instead of a PUBACK: the bridge sends it once the message is durable. */
export const HELD: Error = new Error("PUBACK held until the message is durable");

/**
 * MQTT.js's own packet writer (not in its types): a PUBACK the bridge sends itself, in order,
 * once its message is durable. `customHandleAcks` would hold the PUBACK too, but MQTT.js reads
 * no further packet until it is sent (one message per durable commit) and uses it with MQTT 5
 * only; `handleMessage` calling back with an error sends none and reads on.
 */
type RawSender = {
  _sendPacket(packet: { cmd: "puback"; messageId: number; reasonCode: number }): void;
};

/** The acknowledgements of one connection (its stream). */
export interface ConnectionAcks {
  stream: unknown;
  queue: AckQueue;
}

/** Before the first connection: nothing to acknowledge. */
export function noAcks(): ConnectionAcks {
  return { stream: null, queue: new AckQueue({ puback: () => {}, fail: () => {} }) };
}

/**
 * The acknowledgements of the connection `c` has now (its stream); `current()` is the bridge's
 * client now (a PUBACK goes out only while it is still `c`, on the same stream).
 */
export function connectionAcks(
  c: MqttClient,
  current: () => MqttClient,
  m: Metrics,
  log: Logger,
): ConnectionAcks {
  const stream = c.stream;
  const queue = new AckQueue({
    puback(messageId) {
      if (!c.connected || c !== current() || c.stream !== stream) return;
      (c as unknown as RawSender)._sendPacket({ cmd: "puback", messageId, reasonCode: 0 });
      m.bridgeAcks.inc();
    },
    fail(reason, err) {
      m.messagesRejected.inc({ reason: "not_durable" });
      log.warn("bridge reconnects so that the broker redelivers", {
        reason,
        error: err instanceof Error ? err.message : err === undefined ? undefined : String(err),
      });
      stream?.destroy();
    },
  });
  return { stream, queue };
}
