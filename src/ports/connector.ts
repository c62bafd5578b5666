/**
 * The connector seam: how devices reach twins. The embedded MQTT broker is one connector;
 * an MQTT 5 front end, a bridge from a plant's broker, Sparkplug B (and later OPC UA or
 * Modbus) are others. A connector submits device messages to the node's ingest and takes
 * what flows back to devices — desired state, commands — and questions about its sessions.
 * The node starts each connector once its parts are up and disposes it on stop; it never
 * knows which protocol a connector speaks.
 * @module
 */
import type { IngestPort } from "../bridges/ingest.ts";
import type { Command } from "../../actors/commands.ts";

/** A device's live session on a connector. */
export interface ConnectionInfo {
  clientId: string;
  /** e.g. `mqtt 3.1.1` or `mqtts 3.1.1`. */
  protocol: string;
  /** ms since the epoch. */
  connectedAt: number;
  /** True when it listens for commands. */
  commands: boolean;
  /**
   * Set when the device is reached through the bridge from the plant's broker (its own session
   * is there, out of sight): then `clientId`, `protocol` and `connectedAt` are the bridge's.
   */
  bridge?: BridgeLink;
}

/** The bridge a device is reached through, as one node sees it. */
export interface BridgeLink {
  /** The plant's broker, without credentials. */
  url: string;
  /** True while the bridge is connected to it. */
  connected: boolean;
  /** When this node last got a message of the device through it (ms since the epoch). */
  lastMessageAt: number;
}

/** A rejected device message. */
export interface Rejection {
  at: number;
  /** A reject reason of `actors/validate.ts`, or a connector's own (Sparkplug: `no_birth`, …). */
  reason: string;
  topic: string;
}

/** What the node gives a connector. */
export interface ConnectorContext {
  /** Where device messages go: durable before they are acknowledged to the device. */
  ingest: IngestPort;
}

/** A running connector: one device protocol's listeners and sessions on this node. */
export interface Connector extends AsyncDisposable {
  /** Short name for logs and metrics, e.g. `mqtt`. */
  readonly name: string;
  /** Publish a twin's desired state to its device (MQTT: retained, QoS 1). */
  publishDesired(id: string, desired: unknown): Promise<void>;
  /**
   * Hand commands to the twin's device if it listens on this connector; the ids handed over
   * (none when nobody listens: they stay queued).
   */
  deliverCommands(twin: string, commands: Command[]): Promise<string[]>;
  /** Disconnect the devices of `twin` connected with credential `credential`; how many. */
  disconnect(twin: string, credential: string): number;
  /** Disconnect the devices connected with the client certificate `serial`; how many. */
  disconnectCert(serial: string): number;
  /** Re-read TLS certificates (SIGHUP); new connections use them. */
  reloadTls(): Promise<void>;
  /** Devices with a session on this connector. */
  readonly devicesConnected: number;
  /** What the connector tells about itself in `GET /v1/connectors` (listeners, link; no secrets). */
  status?(): Record<string, unknown>;
  /** The twin's live session on this connector, if any (diagnostics). */
  connection(twin: string): ConnectionInfo | null;
  /** The twin's recently rejected messages on this connector, newest last (diagnostics). */
  rejections(twin: string): Rejection[];
}
