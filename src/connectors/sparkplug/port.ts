/**
 * How an MQTT side — the embedded broker (`src/connectors/mqtt/`) or the bridge to a plant's
 * broker (`src/connectors/bridge/`) — hands Sparkplug B messages to twinmill's Sparkplug host
 * application and lets it publish back. The MQTT side knows nothing of Sparkplug beyond
 * {@linkcode isSparkplugTopic}:
 *
 * 1. once: `const sp = host.attach({ name: "bridge", publish })`;
 * 2. bridge only: before every CONNECT (first and each reconnect) put `sp.will()` into the
 *    connect options (the STATE death certificate), and subscribe to `host.filters` without a
 *    shared subscription (one node takes a plant's Sparkplug traffic: seq order is per edge);
 * 3. after every CONNACK: `await sp.connected()` (publishes the retained STATE birth);
 * 4. every message on a topic where `isSparkplugTopic(topic)`: `sp.onMessage(...)`, and
 *    acknowledge the PUBLISH only when its promise resolves (durable, or refused: then
 *    `outcome.code` is the MQTT 5 reason code to use); a rejected promise means "not durable":
 *    do not acknowledge, the broker resends;
 * 5. on a graceful stop: `await sp.detach()` (STATE offline) before disconnecting.
 * @module
 */
/** The Sparkplug B namespace: every Sparkplug topic starts with `spBv1.0/`. */
export const SPARKPLUG_NAMESPACE = "spBv1.0";

/** True when `topic` (or a filter) is in the Sparkplug B namespace. */
export function isSparkplugTopic(topic: string): boolean {
  return topic.startsWith("spBv1.0/");
}

/** Where a message came from (as the ingest takes it: a redelivery is recognised by it). */
export interface SparkplugOrigin {
  clientId: string;
  /** MQTT packet identifier (QoS 1). */
  messageId?: number;
  /** The PUBLISH's DUP flag, set by a side reading a persistent session (the bridge). */
  dup?: boolean;
}

/** Options of a publish from the Sparkplug host (CMD: QoS 0; STATE: QoS 1, retained). */
export interface SparkplugPublishOptions {
  qos: 0 | 1;
  retain: boolean;
}

/** An MQTT side the Sparkplug host application is attached to. */
export interface SparkplugLink {
  /** Short name for logs, e.g. `mqtt` (embedded broker) or `bridge`. */
  readonly name: string;
  /** Publish on this side's broker; resolves once handed over (QoS 1: acknowledged). */
  publish(topic: string, payload: Uint8Array, opts: SparkplugPublishOptions): Promise<void>;
}

/** The STATE death certificate, as an MQTT CONNECT's will message. */
export interface SparkplugWill {
  topic: string;
  payload: Uint8Array;
  qos: 1;
  retain: true;
}

/** Why a Sparkplug message was refused (a metric label: a bounded set). */
export type SparkplugReason =
  | "bad_topic"
  | "bad_id"
  | "acl_denied"
  | "too_large"
  | "malformed"
  | "compressed"
  | "too_many_metrics"
  | "too_many_edge_nodes"
  | "too_many_devices"
  | "no_birth"
  | "unknown_alias"
  | "bad_metric";

/**
 * What became of one message. Refused ones are counted, logged once per device per minute
 * and kept for diagnostics; the MQTT side acknowledges them too (MQTT 5: with `code`).
 */
export type SparkplugOutcome =
  | { ok: true }
  | {
    ok: false;
    reason: SparkplugReason;
    /** The twin (or edge node key) it is reported as. */
    device: string;
    /**
     * MQTT 5 reason code: 0x99 payload format invalid, 0x95 too large, 0x87 not authorized,
     * 0x97 quota exceeded (too many edge nodes or devices), 0x80 otherwise (no birth yet).
     */
    code: 0x80 | 0x87 | 0x95 | 0x97 | 0x99;
  };

/** One MQTT side's handle on the Sparkplug host application. */
export interface SparkplugAttachment {
  /** The STATE will for this side's next CONNECT; its timestamp is repeated by `connected()`. */
  will(): SparkplugWill;
  /** Connected (again): publish the retained STATE birth (`{"online":true,"timestamp":…}`). */
  connected(): Promise<void>;
  /**
   * One Sparkplug message of this side. Resolves once what it carries is durable (or it was
   * refused: see the outcome); rejects only when it cannot be made durable (do not ack).
   * `client`: the publishing client's twin identity when it is restricted (device auth on,
   * embedded broker); the ACL then holds it to its own edge node's topics.
   */
  onMessage(
    topic: string,
    payload: Uint8Array,
    origin?: SparkplugOrigin,
    client?: { restricted: boolean; twin?: string },
  ): Promise<SparkplugOutcome>;
  /** Graceful stop of this side: STATE offline (retained); its edge nodes are forgotten. */
  detach(): Promise<void>;
}

/** The Sparkplug B host application, as the MQTT sides see it. */
export interface SparkplugHostPort {
  /** `TWINMILL_SPARKPLUG_HOST_ID`: the `{host_id}` of `spBv1.0/STATE/{host_id}`. */
  readonly hostId: string;
  /** What a bridge subscribes to (QoS 1, not shared): `spBv1.0/#`. */
  readonly filters: readonly string[];
  /** Attach an MQTT side (once per side). */
  attach(link: SparkplugLink): SparkplugAttachment;
}
