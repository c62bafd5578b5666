/**
 * The embedded MQTT broker (aedes 2 on `node:net`), the node's MQTT connector: MQTT 3.1, 3.1.1
 * and 5 on the same topics. This file wires one broker's parts to aedes's hooks and events;
 * each job has its own module beside it:
 *
 * | module | job |
 * | --- | --- |
 * | `authenticate.ts` | CONNECT: throttling, limits, tokens, mTLS, provisioning logins |
 * | `publish.ts` | a device's PUBLISH: checks, then the ingest; PUBACK once durable |
 * | `receive_window.ts` | Receive Maximum: messages a connection may have unacknowledged |
 * | `acl.ts` | what a client may publish and hear |
 * | `sessions.ts` | connections, identities, client-id ownership, diagnostics |
 * | `limits.ts` | connection limit, message rate, authentication failure throttling |
 * | `rejections.ts` | rejected messages: diverted, counted, kept for diagnostics |
 * | `commands.ts`, `acks.ts` | command listeners and delivery, delivered once acknowledged |
 * | `reasons.ts` | MQTT 5 reason codes and strings, replies on a Response Topic |
 * | `provisioning.ts` | zero-touch provisioning over MQTT |
 * | `listeners.ts`, `tls.ts`, `packet_guard.ts` | sockets, TLS/mTLS, packet size limits |
 * | `notices.ts` | metrics, audit and rate-limited warnings of refusals |
 * @module
 */
import { Aedes } from "aedes";
import { Buffer } from "node:buffer";
import type { JsonLimits } from "../../../actors/json_intake.ts";
import type { IngestPort } from "../../bridges/ingest.ts";
import type { Logger } from "../../obs/log.ts";
import type { Metrics } from "../../obs/metrics.ts";
import type { Connector } from "../../ports/connector.ts";
import type { RateLimiter } from "../../security/rate_limit.ts";
import { DeliveryAcks } from "./acks.ts";
import { Acl } from "./acl.ts";
import { type Authenticate, authenticator, type DeviceVerifier } from "./authenticate.ts";
import { Commands } from "./commands.ts";
import { type AuthFailureRate, AuthThrottle, MessageRate } from "./limits.ts";
import { listen } from "./listeners.ts";
import { type Denial, Notices } from "./notices.ts";
import { MAX_PACKET_BYTES } from "./packet_guard.ts";
import { type ProvisioningPort, ProvisioningRequests } from "./provisioning.ts";
import { publishAuthorizer } from "./publish.ts";
import { ReceiveWindow } from "./receive_window.ts";
import { matchesDropTopic, Rejections } from "./rejections.ts";
import { Sessions } from "./sessions.ts";
import type { TlsListener } from "./tls.ts";
import type { SparkplugHostPort } from "../sparkplug/port.ts";
import { embeddedSide } from "../sparkplug/sides.ts";

/** A running broker: the MQTT connector, plus its ports. */
export interface Broker extends Connector {
  port: number;
  /** Port of the TLS listener, if any. */
  tlsPort?: number;
}

/** Options of {@linkcode startBroker}. */
export interface BrokerOptions {
  host: string;
  port: number;
  ingest: IngestPort;
  logger: Logger;
  metrics: Metrics;
  /**
   * With it, devices must authenticate (username = twin id, password = token) and may touch
   * only their own twin's topics.
   */
  auth?: DeviceVerifier;
  /** Most connections at once; more are refused (CONNACK 3). Default: no limit. */
  maxConnections?: number;
  /** Per-connection message rate; over it, the device is disconnected (it resends later). */
  limiter?: RateLimiter;
  /**
   * Also listen with TLS. With a client CA that listener is mTLS whatever `auth` says: a
   * certificate is required, names the twin (its topics only) and is checked for revocation.
   */
  tls?: TlsListener;
  /**
   * Zero-touch provisioning over MQTT: a client logs in with username `$provision` and a
   * provisioning key as password, subscribes to `provision/{clientId}/response`, publishes its
   * request on `provision/{clientId}/request` and gets the answer on the response topic.
   */
  provisioning?: ProvisioningPort;
  /** A client subscribed to a twin's commands (deliver what is queued). */
  onCommandsListening?(twin: string): void;
  /**
   * Message Expiry Interval (s) of the retained desired state: the broker drops the retained
   * copy after it, and a subscriber gets the time left. 0 or absent: it never expires.
   */
  desiredExpirySec?: number;
  /** Limits of the JSON intake for device payloads (default `DEFAULT_JSON_LIMITS`). */
  jsonLimits?: JsonLimits;
  /**
   * Authentication failures allowed per source address and per identity (username) before
   * further connects from it are refused unchecked (CONNACK 3); defaults: a burst of 50 then
   * 5 a second per source, a burst of 10 then 1 a second per identity. Every attempt takes a
   * token while it is checked; one that does not fail gives it back.
   */
  authFailureRate?: AuthFailureRate;
  /** Every refused connect and ACL denial (audit). */
  onDenied?(e: Denial): void;
  /** The Sparkplug B host application: takes `spBv1.0/…`; its STATE is published here. */
  sparkplug?: SparkplugHostPort;
  /**
   * Receive Maximum: QoS 1/2 messages a connection may have unacknowledged (told to MQTT 5
   * clients in CONNACK; see `receive_window.ts`). Default 1000.
   */
  receiveMaximum?: number;
}

/**
 * MQTT 5 limits, told to clients in CONNACK. Topic aliases: a client may define up to this many
 * per connection. Receive Maximum (default; `BrokerOptions.receiveMaximum`): QoS 1/2 messages a
 * client may have unacknowledged (enforced by `receive_window.ts`). Maximum Packet Size: the
 * socket guard's limit, checked by aedes first so that an MQTT 5 client gets DISCONNECT `0x95`.
 * Session expiry: a session outlives its connection at most a week, and at most this many
 * sessions wait to expire (a client disconnecting beyond that loses its session at once).
 */
const MQTT5 = {
  topicAliasMaximum: 64,
  receiveMaximum: 1000,
  maximumPacketSize: MAX_PACKET_BYTES,
  sessionExpiryIntervalLimit: 7 * 24 * 3600,
  pendingSessionsLimit: 100_000,
} as const;

/** Start the embedded broker. */
export async function startBroker(o: BrokerOptions): Promise<Broker> {
  const log = o.logger;
  const m = o.metrics;
  const notices = new Notices(log, m, o.onDenied?.bind(o));
  const sessions = new Sessions();
  const acl = new Acl(o.auth !== undefined, sessions);
  const rejections = new Rejections(notices);
  const acks = new DeliveryAcks();
  const commands = new Commands(acl, sessions, log, acks, o.onCommandsListening?.bind(o));
  const throttle = new AuthThrottle(o.authFailureRate);
  const authenticate: Authenticate = authenticator(o, sessions, throttle, notices);
  // (aedes is created below; the Sparkplug host publishes only once the broker listens)
  const sparkplug = o.sparkplug &&
    embeddedSide(o.sparkplug, { publish: (packet, done) => aedes.publish(packet, done) });
  const receiveMaximum = o.receiveMaximum ?? MQTT5.receiveMaximum;
  const window = new ReceiveWindow(receiveMaximum, notices);
  const authorizePublish = window.guard(publishAuthorizer({
    ingest: o.ingest,
    sessions,
    acl,
    rejections,
    notices,
    rate: o.limiter && new MessageRate(o.limiter),
    provisioning: o.provisioning && new ProvisioningRequests(o.provisioning, rejections, notices),
    jsonLimits: o.jsonLimits,
    sparkplug,
  }));

  const aedes = await Aedes.createBroker({
    authorizePublish,
    authenticate: authenticate as never,
    // nobody may watch the diverted rejects (negative SUBACK, 0x80); with device auth, a
    // device may subscribe only to its own desired state and commands
    authorizeSubscribe: (client, sub, cb) => {
      if (acl.mayReceive(client, sub.topic)) return cb(null, sub);
      if (!matchesDropTopic(sub.topic)) notices.aclDenied(acl.who(client), "subscribe", sub.topic);
      cb(null, null);
    },
    queueLimit: 1000,
    // A subscriber that stops reading must not stall delivery, and with it the PUBACKs of
    // every device (aedes waits for delivery before reading a connection's next packets).
    drainTimeout: 5000,
    concurrency: 1000,
    // command deliveries get their packet identifier here, to be tied to their PUBACK
    authorizeForward: (client, packet) => acks.forward(client, packet),
    ...MQTT5,
    receiveMaximum,
  });
  // a packet over `maximumPacketSize`, cut by aedes as its header arrives (MQTT 5: DISCONNECT
  // 0x95 first), counted like the socket guard's cuts
  const tooLarge = (c: { id: string | null }, err: Error & { size?: number }) => {
    if (err?.message !== "packet too large") return;
    m.messagesRejected.inc({ reason: "too_large" });
    if (notices.oncePerMinute(`oversize\u0000${c.id}`)) {
      log.warn("MQTT packet over its size limit; connection closed", {
        client: c.id,
        size: err.size,
      });
    }
  };
  aedes.on("clientError", tooLarge);
  aedes.on("connectionError", tooLarge);
  aedes.on("client", (c) => {
    sessions.connected(c);
    m.mqttConnections.inc();
  });
  // a persistent session (clean = false) gets its subscriptions back without a SUBSCRIBE;
  // once it has its CONNACK, it hears what is queued for it
  aedes.on("clientReady", (c) => {
    // deno-lint-ignore no-explicit-any
    for (const topic of Object.keys((c as any).subscriptions ?? {})) commands.subscribed(c, topic);
  });
  aedes.on("clientDisconnect", (c) => {
    m.mqttConnections.dec();
    sessions.disconnected(c);
    commands.disconnected(c);
  });
  aedes.on("subscribe", (subs, c) => {
    if (c) { for (const sub of subs) commands.subscribed(c, sub.topic); }
  });
  aedes.on("unsubscribe", (topics, c) => {
    if (!c) return;
    for (const topic of topics) commands.unsubscribed(c, topic);
  });

  const listeners = await listen(o, aedes, notices);
  await sparkplug?.connected();

  return {
    name: "mqtt",
    port: listeners.port,
    tlsPort: listeners.tlsPort,
    publishDesired(id, desired) {
      return new Promise((resolve) => {
        aedes.publish(
          {
            cmd: "publish",
            topic: `twins/${id}/desired`,
            payload: Buffer.from(JSON.stringify(desired)),
            qos: 1,
            retain: true,
            dup: false,
            ...(o.desiredExpirySec
              ? { properties: { messageExpiryInterval: o.desiredExpirySec } }
              : {}),
          },
          (err?: Error) => {
            if (err) log.error("cannot publish desired state to device", { device: id, err });
            resolve();
          },
        );
      });
    },
    disconnect(twin, credential) {
      const n = sessions.drop((me) => me.twin === twin && me.credential === credential);
      if (n > 0) log.info("disconnected devices of a revoked credential", { twin, credential, n });
      return n;
    },
    disconnectCert(serial) {
      const n = sessions.drop((me) => me.credential === `cert:${serial}`);
      if (n > 0) log.info("disconnected devices of a revoked certificate", { serial, n });
      return n;
    },
    deliverCommands: (twin, cmds) => commands.deliver(twin, cmds),
    connection: (twin) => sessions.connection(twin, commands),
    rejections: (twin) => rejections.of(twin),
    get devicesConnected() {
      return sessions.devices;
    },
    status: () => ({
      port: listeners.port,
      ...(listeners.tlsPort !== undefined ? { tlsPort: listeners.tlsPort } : {}),
      protocols: ["mqtt 3.1", "mqtt 3.1.1", "mqtt 5"],
    }),
    reloadTls: () => listeners.reloadTls(),
    async [Symbol.asyncDispose]() {
      await sparkplug?.detach();
      const closed = listeners.close();
      await new Promise<void>((r) => aedes.close(() => r()));
      await closed;
    },
  };
}
