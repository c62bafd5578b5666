/**
 * Inbound flow control, the device side of Receive Maximum (MQTT 5 §4.9): a connection may
 * have at most `maximum` QoS 1/2 PUBLISHes unacknowledged. A message is acknowledged only once
 * it is durable, so a message counts from its arrival until the publish hook calls back —
 * acknowledged, refused with a reason code, or failed (then the connection closes) — and a
 * connection that closes takes its count with it: nothing to leak.
 *
 * - MQTT 5: the client was told the maximum in CONNACK, so one more is a protocol error. That
 *   message and every later one of the connection are neither handled nor acknowledged; once
 *   the messages before it are acknowledged, the connection is closed with DISCONNECT `0x93`
 *   (Receive Maximum exceeded), and the device resends the rest. Counted
 *   (`twinmill_mqtt_messages_rejected_total{reason="receive_maximum"}`), logged once per client
 *   per minute.
 * - MQTT 3.1 / 3.1.1 has no such limit (nothing was told): a message beyond it waits, in order
 *   with the connection's later ones, until an earlier one is acknowledged, and the socket is not
 *   read meanwhile (aedes's batch reading alone lets more in while a batch is pending), so only
 *   what one read parsed waits, and the device is held back by TCP flow control, never
 *   disconnected.
 *
 * A QoS 2 message counts until its PUBREC (the spec would count it until PUBCOMP): more lenient,
 * never stricter.
 * @module
 */
import type { AuthorizePublishHandler, Client, PublishPacket } from "aedes";
import type { Notices } from "./notices.ts";
import { isV5 } from "./reasons.ts";

/** DISCONNECT reason code: the client sent more unacknowledged QoS 1/2 PUBLISHes than allowed. */
export const RECEIVE_MAXIMUM_EXCEEDED = 0x93;

type Done = (err?: Error | null) => void;

/**
 * The aedes client internals a hold uses (aedes 2.0.0-beta.1): its socket, read with
 * `read(null)` per batch, and `_nextBatch`, the read loop. (Its own `pause()` is for CONNECT
 * only: the batch callbacks that come while paused are not counted, and reading never resumes.)
 */
type Reader = {
  conn: { read(n?: number | null): unknown };
  _nextBatch(): void;
  closed?: boolean;
};

/** Stop reading `client`'s socket (its reads come back empty); the function returned reads on. */
function hold(client: Client): () => void {
  const c = client as unknown as Reader;
  const read = c.conn.read;
  c.conn.read = () => null;
  return () => {
    c.conn.read = read;
    c._nextBatch();
  };
}

/** One connection's window. */
interface Window {
  /** QoS 1/2 messages handed to the publish hook and not yet called back. */
  open: number;
  /** MQTT 5 client over the maximum: nothing more is handled; closes when `open` is 0. */
  closing: boolean;
  /** MQTT 3.1.1 messages waiting for room, in arrival order. */
  waiting: Array<{ packet: PublishPacket; done: Done }>;
  /** While messages wait: reads the socket on. */
  readOn?: () => void;
}

/** The receive windows of one broker's connections. */
export class ReceiveWindow {
  readonly #of = new WeakMap<Client, Window>();

  constructor(readonly maximum: number, readonly notices: Notices) {}

  /** `authorize` (the publish hook) behind each connection's window. */
  guard(authorize: AuthorizePublishHandler): AuthorizePublishHandler {
    return (client, packet, done) => {
      if (!client) return authorize(client, packet, done);
      let w = this.#of.get(client);
      if (w === undefined) this.#of.set(client, w = { open: 0, closing: false, waiting: [] });
      if (w.closing) return; // never acknowledged: resent after the reconnect
      if (packet.qos > 0 && w.open >= this.maximum) {
        if (isV5(client)) return this.#exceeded(client, w);
        return this.#wait(client, w, packet, done);
      }
      if (w.waiting.length > 0) return this.#wait(client, w, packet, done); // keep the order
      this.#run(client, w, packet, done, authorize);
    };
  }

  #run(
    client: Client,
    w: Window,
    packet: PublishPacket,
    done: Done,
    next: AuthorizePublishHandler,
  ) {
    if (packet.qos === 0) return next(client, packet, done);
    w.open++;
    next(client, packet, (err) => {
      w.open--;
      done(err);
      if (w.closing) {
        if (w.open === 0) this.#disconnect(client);
        return;
      }
      this.#drain(client, w, next);
    });
  }

  /** A 3.1.1 message waits for room; the connection is not read until none waits. */
  #wait(client: Client, w: Window, packet: PublishPacket, done: Done): void {
    w.readOn ??= hold(client);
    w.waiting.push({ packet, done });
  }

  /** Hand waiting messages over while there is room (none once the connection is closed). */
  #drain(client: Client, w: Window, next: AuthorizePublishHandler): void {
    if (w.waiting.length === 0) return;
    if ((client as unknown as Reader).closed) return void (w.waiting.length = 0);
    while (w.waiting.length > 0) {
      const head = w.waiting[0];
      if (head.packet.qos > 0 && w.open >= this.maximum) return;
      w.waiting.shift();
      this.#run(client, w, head.packet, head.done, next);
    }
    const readOn = w.readOn;
    w.readOn = undefined;
    readOn?.(); // last: it may parse and hand over more at once
  }

  #exceeded(client: Client, w: Window): void {
    w.closing = true;
    const { log, metrics } = this.notices;
    metrics.messagesRejected.inc({ reason: "receive_maximum" });
    if (this.notices.oncePerMinute(`receive_maximum\u0000${client.id}`)) {
      log.warn("MQTT 5 client over the Receive Maximum; disconnecting it (0x93)", {
        client: client.id,
        receiveMaximum: this.maximum,
      });
    }
    if (w.open === 0) this.#disconnect(client);
  }

  #disconnect(client: Client): void {
    client.disconnect({
      reasonCode: RECEIVE_MAXIMUM_EXCEEDED,
      properties: {
        reasonString: `more than ${this.maximum} QoS 1/2 messages unacknowledged ` +
          "(the Receive Maximum of the CONNACK)",
      },
    });
  }
}
