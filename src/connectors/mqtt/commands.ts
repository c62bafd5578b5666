/**
 * Commands to devices. The broker keeps which clients listen for each twin's commands (a
 * subscription to `twins/{id}/commands/+`, `twins/{id}/commands/#` or `twins/{id}/#` that the
 * ACL granted) and publishes commands straight to them (QoS 1), not through aedes's topic
 * tree: on a session takeover (same client id reconnecting) aedes can drop the new
 * connection's restored subscription from its matcher, and a command routed there would reach
 * nobody while counting as delivered.
 * @module
 */
import type { Client } from "aedes";
import { Buffer } from "node:buffer";
import { isValidTwinId } from "../../../actors/validate.ts";
import { type Command, commandPayload } from "../../../actors/commands.ts";
import type { Logger } from "../../obs/log.ts";
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
   * ids handed to at least one client (none when nobody listens: they stay queued).
   */
  async deliver(twin: string, commands: Command[]): Promise<string[]> {
    // deno-lint-ignore no-explicit-any
    const open = [...(this.#listeners.get(twin) ?? [])].filter((c) => !(c as any).closed);
    if (open.length === 0) return [];
    const sent = await Promise.all(commands.map(async (cmd) => {
      const topic = `twins/${twin}/commands/${cmd.id}`;
      const to = open.filter((c) => this.acl.mayReceive(c, topic));
      if (to.length === 0) return null;
      const payload = Buffer.from(JSON.stringify(commandPayload(cmd)));
      const results = await Promise.all(to.map((client) =>
        new Promise<boolean>((resolve) => {
          client.publish({
            cmd: "publish",
            topic,
            payload,
            qos: 1,
            retain: false,
            dup: false,
          }, (err?: Error) => {
            if (err) this.log.warn("cannot publish a command to its device", { device: twin, err });
            resolve(!err);
          });
        })
      ));
      return results.some(Boolean) ? cmd.id : null;
    }));
    return sent.filter((id): id is string => id !== null);
  }
}
