/**
 * The devices this node heard through the bridge, for diagnostics: the device's session is on
 * the plant's broker, out of sight, so what the node can tell is that the device is reached
 * through the bridge and when its last message came. Bounded by count: past the limit the
 * device heard longest ago is forgotten (its diagnostics show no session until it speaks again).
 * @module
 */
import type { ConnectionInfo } from "../../ports/connector.ts";

/** Devices remembered by default. */
export const MAX_HEARD_DEVICES = 100_000;

/** Each device's last message through the bridge, least recently heard first. */
export class HeardDevices {
  /** Twin id -> time of its last message (ms); Map order is the order heard. */
  readonly #last = new Map<string, number>();

  constructor(readonly max: number = MAX_HEARD_DEVICES) {}

  /** `twin`'s device sent a message at `at`. */
  heard(twin: string, at: number): void {
    // re-insert so the Map's order stays least recently heard first
    if (!this.#last.delete(twin) && this.#last.size >= this.max) {
      this.#last.delete(this.#last.keys().next().value!);
    }
    this.#last.set(twin, at);
  }

  /** When `twin`'s device was last heard through the bridge (ms), if remembered. */
  lastMessageAt(twin: string): number | undefined {
    return this.#last.get(twin);
  }

  /** Devices remembered. */
  get size(): number {
    return this.#last.size;
  }
}

/** The bridge's link as {@linkcode bridgedConnection} tells it. */
export interface LinkState {
  url: string;
  clientId: string;
  protocol: string;
  connected: boolean;
  /** When the link last connected (ms). */
  connectedAt: number;
}

/**
 * What diagnostics show of a device heard through the bridge: the bridge's link (it hands the
 * device's commands to the plant's broker while connected), null for a device not heard.
 */
export function bridgedConnection(
  heard: HeardDevices,
  twin: string,
  link: LinkState,
): ConnectionInfo | null {
  const at = heard.lastMessageAt(twin);
  if (at === undefined) return null;
  return {
    clientId: link.clientId,
    protocol: link.protocol,
    connectedAt: link.connectedAt,
    commands: link.connected,
    bridge: { url: link.url, connected: link.connected, lastMessageAt: at },
  };
}
