/**
 * Command deliveries tied to the device's PUBACK: a command counts as delivered only once the
 * device acknowledged its QoS 1 PUBLISH. aedes calls back when such a message is written, not
 * when it is acknowledged, and its `ack` event names the message only for a persistent
 * session; so the broker picks the packet identifier of each command delivery itself (in
 * `authorizeForward`, which aedes calls just before it numbers the packet, taking the
 * connection's next identifier as aedes would) and reads the connection's PUBACKs off its
 * packet parser. Both reach into aedes's client (`_nextId`, `_parser`), pinned to one aedes
 * version in `deno.json`; `tests/integration/mqtt5_test.ts` shows a break.
 * @module
 */
import type { AedesPublishPacket, Client } from "aedes";

/**
 * How long a delivery waits for the device's PUBACK before it counts as not delivered (the
 * command stays pending and is handed over again): within the second the twin's host waits
 * for the answer of a delivery.
 */
export const ACK_WAIT_MS = 800;
/**
 * Deliveries one connection may have waiting for their PUBACK (fewer when its MQTT 5 Receive
 * Maximum is lower); more are not sent now.
 */
export const MAX_WAITING = 256;

/** The aedes client internals this module uses. */
interface Wire {
  closed: boolean;
  /** MQTT 5: unacknowledged QoS 1/2 messages the client takes at once (aedes 2). */
  receiveMaximum?: number;
  _nextId: number;
  _parser: {
    on(e: "packet", f: (p: { cmd: string; messageId?: number; reasonCode?: number }) => void): void;
  };
}

interface Waiter {
  resolve(acked: boolean): void;
  timer: ReturnType<typeof setTimeout>;
  id?: number;
}

/** One connection's deliveries waiting: by topic until numbered, then by packet identifier. */
interface Waiting {
  byTopic: Map<string, Waiter>;
  byId: Map<number, Waiter>;
  pending: Map<string, Promise<boolean>>;
}

/** The deliveries of one broker waiting for their PUBACK. */
export class DeliveryAcks {
  readonly #conns = new WeakMap<Client, Waiting>();

  /** The delivery on `topic` the client has not acknowledged yet, if one is waiting. */
  pending(client: Client, topic: string): Promise<boolean> | undefined {
    return this.#conns.get(client)?.pending.get(topic);
  }

  /**
   * Expect the client's PUBACK of the next QoS 1 PUBLISH on `topic` (publish it right after):
   * true once acknowledged with a success code, false on a negative PUBACK, after
   * {@linkcode ACK_WAIT_MS}, when the client is gone, or when it already has
   * {@linkcode MAX_WAITING} deliveries (or its Receive Maximum) waiting.
   */
  expect(client: Client, topic: string): Promise<boolean> {
    const w = this.#waiting(client);
    const c = client as unknown as Wire;
    if (w.pending.size >= Math.min(MAX_WAITING, c.receiveMaximum ?? MAX_WAITING) || c.closed) {
      return Promise.resolve(false);
    }
    const p = new Promise<boolean>((resolve) => {
      const waiter: Waiter = {
        resolve: (acked) => {
          clearTimeout(waiter.timer);
          if (w.byTopic.get(topic) === waiter) w.byTopic.delete(topic);
          if (waiter.id !== undefined && w.byId.get(waiter.id) === waiter) w.byId.delete(waiter.id);
          w.pending.delete(topic);
          resolve(acked);
        },
        timer: setTimeout(() => waiter.resolve(false), ACK_WAIT_MS),
      };
      w.byTopic.set(topic, waiter);
    });
    w.pending.set(topic, p);
    return p;
  }

  /**
   * The `authorizeForward` hook's part: a QoS 1 packet on a topic a delivery waits for gets
   * the connection's next packet identifier, remembered for its PUBACK.
   */
  forward(client: Client, packet: AedesPublishPacket): AedesPublishPacket {
    if (packet.qos !== 1) return packet;
    const w = this.#conns.get(client);
    const waiter = w?.byTopic.get(packet.topic);
    if (!w || !waiter) return packet;
    w.byTopic.delete(packet.topic);
    const c = client as unknown as Wire;
    const id = c._nextId;
    c._nextId = id >= 65535 ? 1 : id + 1;
    w.byId.get(id)?.resolve(false); // 65535 deliveries later: that one is long lost
    waiter.id = id;
    w.byId.set(id, waiter);
    return { ...packet, messageId: id } as AedesPublishPacket;
  }

  /** The client is gone: its deliveries waiting were not acknowledged. */
  disconnected(client: Client): void {
    const w = this.#conns.get(client);
    if (!w) return;
    for (const waiter of [...w.byTopic.values(), ...w.byId.values()]) waiter.resolve(false);
    this.#conns.delete(client);
  }

  #waiting(client: Client): Waiting {
    let w = this.#conns.get(client);
    if (w) return w;
    const waiting: Waiting = w = { byTopic: new Map(), byId: new Map(), pending: new Map() };
    this.#conns.set(client, w);
    (client as unknown as Wire)._parser.on("packet", (p) => {
      if (p.cmd !== "puback" || p.messageId === undefined) return;
      waiting.byId.get(p.messageId)?.resolve((p.reasonCode ?? 0) < 0x80);
    });
    return w;
  }
}
