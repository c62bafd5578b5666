/**
 * Commands to devices. The broker keeps which clients listen for each twin's commands (a
 * subscription to `twins/{id}/commands/+`, `twins/{id}/commands/#` or `twins/{id}/#` that the
 * ACL granted) and publishes commands straight to them (QoS 1), not through aedes's topic
 * tree: on a session takeover (same client id reconnecting) aedes can drop the new
 * connection's restored subscription from its matcher, and a command routed there would reach
 * nobody while counting as delivered. A command counts as delivered once the device's PUBACK
 * of it arrives (`acks.ts`). An MQTT 5 device also gets the command's Response Topic (its
 * result topic), Correlation Data (the command id) and Message Expiry Interval (until the
 * command expires; a persistent session's queue drops it then, for MQTT 3.1.1 too).
 * @module
 */
import type { Client, PublishPacket } from "aedes";
import { Buffer } from "node:buffer";
import { isValidTwinId } from "../../../actors/validate.ts";
import { type Command, commandPayload } from "../../../actors/commands.ts";
import type { Logger } from "../../obs/log.ts";
import type { DeliveryAcks } from "./acks.ts";
import type { Acl } from "./acl.ts";
import type { CommandListening, Sessions } from "./sessions.ts";

/** The twin whose commands an MQTT subscription filter receives, if it names one. */
export function commandListenerOf(filter: string): string | undefined {
  const m = /^twins\/([^/]+)\/(commands\/(\+|#)|#)$/.exec(filter);
  return m && isValidTwinId(m[1]) ? m[1] : undefined;
}

/** The command listeners of one broker, and command delivery to them. */
export class Commands implements CommandListening {
  /** Clients listening for commands, by twin. */
  readonly #listeners = new Map<string, Set<Client>>();
  /** Twins each client listens for. */
  readonly #listening = new WeakMap<Client, Set<string>>();

  constructor(
    readonly acl: Acl,
    readonly sessions: Sessions,
    readonly log: Logger,
    readonly acks: DeliveryAcks,
    /** A client subscribed to a twin's commands (deliver what is queued). */
    readonly onListening?: (twin: string) => void,
  ) {}

  /** True when the client listens for the twin's commands. */
  listens(twin: string, c: Client): boolean {
    return this.#listeners.get(twin)?.has(c) ?? false;
  }

  /** The client subscribed to `topic` (or got it back with its persistent session). */
  subscribed(c: Client, topic: string): void {
    const twin = commandListenerOf(topic);
    // aedes announces refused filters too (granted 0x80): those listen for nothing
    if (!twin || !this.acl.mayReceive(c, topic)) return;
    this.sessions.seen(c, twin);
    let set = this.#listening.get(c);
    if (!set) this.#listening.set(c, set = new Set());
    set.add(twin);
    let who = this.#listeners.get(twin);
    if (!who) this.#listeners.set(twin, who = new Set());
    who.add(c);
    this.onListening?.(twin);
  }

  /** The client unsubscribed from `topic`. */
  unsubscribed(c: Client, topic: string): void {
    const twin = commandListenerOf(topic);
    if (!twin) return;
    this.#listening.get(c)?.delete(twin);
    this.#unlisten(c, twin);
  }

  /** The client is gone: it listens for nothing. */
  disconnected(c: Client): void {
    this.acks.disconnected(c);
    for (const t of this.#listening.get(c) ?? []) this.#unlisten(c, t);
    this.#listening.delete(c);
  }

  #unlisten(c: Client, twin: string): void {
    const who = this.#listeners.get(twin);
    who?.delete(c);
    if (who?.size === 0) this.#listeners.delete(twin);
  }

  /**
   * Publish commands (QoS 1) to `twins/{twin}/commands/{id}` for the open connections that
   * listen for them, each delivery asking the same ACL as a subscription (`mayReceive`); the
   * ids a client acknowledged (PUBACK) within `ACK_WAIT_MS` (none when nobody listens or
   * acknowledges: they stay queued and are handed over again).
   */
  async deliver(twin: string, commands: Command[]): Promise<string[]> {
    // deno-lint-ignore no-explicit-any
    const open = [...(this.#listeners.get(twin) ?? [])].filter((c) => !(c as any).closed);
    if (open.length === 0) return [];
    const now = Date.now();
    const sent = await Promise.all(commands.map(async (cmd) => {
      const topic = `twins/${twin}/commands/${cmd.id}`;
      const to = open.filter((c) => this.acl.mayReceive(c, topic));
      if (to.length === 0 || cmd.expiresAt <= now) return null;
      const payload = Buffer.from(JSON.stringify(commandPayload(cmd)));
      const acked = await Promise.all(to.map((client) => this.#send(client, topic, payload, cmd)));
      return acked.some(Boolean) ? cmd.id : null;
    }));
    return sent.filter((id): id is string => id !== null);
  }

  /** One delivery to one client: true once the client acknowledged it. */
  #send(client: Client, topic: string, payload: Buffer, cmd: Command): Promise<boolean> {
    const waiting = this.acks.pending(client, topic);
    if (waiting) return waiting; // handed over already; its PUBACK answers for both
    const acked = this.acks.expect(client, topic);
    const seconds = Math.max(1, Math.ceil((cmd.expiresAt - Date.now()) / 1000));
    const properties = client.version === 5
      ? {
        responseTopic: `${topic}/result`,
        correlationData: Buffer.from(cmd.id),
        messageExpiryInterval: seconds,
      }
      : undefined;
    client.publish({
      cmd: "publish",
      topic,
      payload,
      qos: 1,
      retain: false,
      dup: false,
      ...(properties && { properties }),
      // aedes drops a delivery queued in a persistent session once the command expires
      messageExpiry: cmd.expiresAt,
    } as PublishPacket, (err?: Error) => {
      if (err) this.log.warn("cannot publish a command to its device", { topic, err });
    });
    return acked;
  }
}
