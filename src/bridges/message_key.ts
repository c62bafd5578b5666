/**
 * The key of a device message (`TwinMessage.key`): how a twin recognises a QoS 1 message it
 * got before. A device's resend after a lost PUBACK, or a broker's redelivery to a persistent
 * session (the bridge after a `kill -9`), carries the same packet id, topic and payload.
 * @module
 */

/** Where an MQTT message came from: lets a twin skip a resend of the same message. */
export interface Origin {
  clientId: string;
  /** MQTT packet identifier (QoS 1). */
  messageId?: number;
  /**
   * Set by a connector reading a broker's persistent session (the bridge): the PUBLISH's DUP
   * flag. Absent for a device's own publish (the embedded broker).
   */
  dup?: boolean;
}

/**
 * The hash of a message's identity: 52 bits from two 32-bit FNV-1a hashes of the client id,
 * packet id, topic and payload (a checksum, not a secret: a device can only collide with its
 * own messages). Two different messages share it only if one client reuses a packet id with
 * the very same topic and payload within the twin's last 128 keyed messages.
 */
export function messageKey(origin: Origin, topic: string, payload: Uint8Array): number {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  const mix = (byte: number) => {
    a = Math.imul(a ^ byte, 0x01000193);
    b = Math.imul(b ^ byte, 0x01000193) ^ (b >>> 15);
  };
  const head = `${origin.clientId}\u0000${origin.messageId}\u0000${topic}\u0000`;
  for (let i = 0; i < head.length; i++) {
    const c = head.charCodeAt(i);
    mix(c & 0xff);
    mix(c >>> 8);
  }
  for (let i = 0; i < payload.length; i++) mix(payload[i]);
  return (a >>> 0) * 0x100000 + ((b >>> 0) & 0xfffff);
}

/**
 * The key a message carries to its twin: none without a packet id (QoS 0); `k` when it may be
 * a resend (a device's own publish: any may be; a broker's delivery marked DUP); `-k` when a
 * broker delivers it for the first time (`origin.dup === false`): the twin remembers `k` but
 * never takes the message for a resend. A broker numbers its deliveries to one session from
 * one counter for every device, so packet ids come round for a quiet twin within its last
 * keys; only a DUP delivery can be a message applied before.
 */
export function originKey(
  origin: Origin | undefined,
  topic: string,
  payload: Uint8Array,
): number | undefined {
  if (origin?.messageId === undefined) return undefined;
  const k = messageKey(origin, topic, payload);
  return origin.dup === false ? -k : k;
}
