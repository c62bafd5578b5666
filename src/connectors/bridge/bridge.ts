/**
 * The bridge from the plant's broker (`TWINMILL_MQTT_URL`) as a device connector: a client
 * of that broker with a persistent session (fixed client id, `clean: false`), subscribed to
 * the twin topics — as `$share/{group}/…` in a cluster, so the nodes split the devices — and
 * acknowledging each QoS 1 PUBLISH only once the message is durable in twinmill (`acks.ts`).
 * A node killed before its PUBACKs went out gets those messages again from its session; each
 * carries the broker's packet id and DUP flag to its twin, which skips the ones it applied.
 *
 * Downlink goes back through the same broker, from the node that hosts the twin: desired state
 * retained at QoS 1, commands at QoS 1 (a command is `delivered` once the plant's broker
 * acknowledged it). MQTT 5 when the broker speaks it, else 3.1.1; reconnects with backoff.
 * @module
 */
import mqtt, { type MqttClient } from "mqtt";
import { Buffer } from "node:buffer";
import { type Command, commandPayload } from "../../../actors/commands.ts";
import type { JsonLimits } from "../../../actors/json_intake.ts";
import type { BridgeConfig } from "../../config/bridge_config.ts";
import type { IngestPort } from "../../bridges/ingest.ts";
import type { Logger } from "../../obs/log.ts";
import type { Metrics } from "../../obs/metrics.ts";
import type { Connector } from "../../ports/connector.ts";
import { Notices } from "../mqtt/notices.ts";
import { Rejections } from "../mqtt/rejections.ts";
import { type ConnectionAcks, connectionAcks, HELD, noAcks } from "./connection_acks.ts";
import {
  clientOptions,
  MAX_BACKOFF_MS,
  MIN_BACKOFF_MS,
  readTlsFiles,
  RECEIVE_MAXIMUM,
  type TlsFiles,
} from "./client_options.ts";
import { intake, type IntakeParts } from "./intake.ts";
import { subscribeTwins } from "./subscribe.ts";
import { bridgedConnection, HeardDevices } from "./heard.ts";
import { DurableKeys } from "./resends.ts";
import { messageKey } from "../../bridges/message_key.ts";
import type { SparkplugHostPort } from "../sparkplug/port.ts";

/** How long a command waits for the plant broker's PUBACK to count as delivered (ms). */
const COMMAND_ACK_MS = 800;
/** Twins remembered whose commands could not go out while disconnected. */
const MAX_WAITING_TWINS = 10_000;
/** Twins heard from per connection whose queued commands are offered again (see below). */
const MAX_HEARD_TWINS = 100_000;
/** Options of {@linkcode startBridge}. */
export interface BridgeOptions {
  config: BridgeConfig;
  ingest: IngestPort;
  logger: Logger;
  metrics: Metrics;
  jsonLimits?: JsonLimits;
  /** True for the twins this node hosts: their downlink goes out from this node only. */
  owns(id: string): boolean;
  /** Publish the desired state of every twin this node hosts (after each connect). */
  republish(): Promise<unknown>;
  /**
   * Deliver `twin`'s queued commands now: after a reconnect for those refused meanwhile, and
   * once per connection when its device first sends telemetry, reported state or status (the
   * bridge cannot see who subscribes: a device that speaks is taken to listen).
   */
  onCommandsListening?(twin: string): void;
  /** The Sparkplug B host application: it takes `spBv1.0/#` of this broker (not shared). */
  sparkplug?: SparkplugHostPort;
  /**
   * MQTT 5 Message Expiry Interval (s) of the retained desired state (`TWINMILL_DESIRED_EXPIRY`):
   * the broker drops it after that. 0 or absent, or a 3.1.1 link: it never expires.
   */
  desiredExpirySec?: number;
}

/** A running bridge. */
export interface Bridge extends Connector {
  /** True while connected to the plant's broker. */
  readonly connected: boolean;
  /** For `GET /v1/connectors`: the link to the plant's broker (never its credentials). */
  status(): Record<string, unknown>;
}

/** Start the bridge; it connects (and reconnects) in the background. */
export async function startBridge(o: BridgeOptions): Promise<Bridge> {
  const cfg = o.config;
  const log = o.logger;
  const m = o.metrics;
  const notices = new Notices(log, m);
  const rejections = new Rejections(notices);
  // Sparkplug B (see ../sparkplug/port.ts): its STATE will on every CONNECT, its birth after
  // every CONNACK, its messages acknowledged once its promise resolves
  const sp = o.sparkplug?.attach({
    name: "bridge",
    publish: async (topic, payload, opts) => {
      if (opts.qos === 0) return void client.publish(topic, Buffer.from(payload), opts);
      if (!(await publish(topic, payload, opts.retain, COMMAND_ACK_MS))) {
        throw new Error(`cannot publish to ${topic}`);
      }
    },
  });
  const parts: IntakeParts = {
    ingest: o.ingest,
    rejections,
    accepted: (kind) => m.messagesIn.inc({ kind }),
    clientId: cfg.clientId,
    jsonLimits: o.jsonLimits,
    sparkplug: sp,
  };
  let tls: TlsFiles = await readTlsFiles(cfg);
  let version: 4 | 5 = 5;
  let connectedOnce = false;
  let connected = false;
  let connectedAt = 0;
  let closed = false;
  let backoff = MIN_BACKOFF_MS;
  let acks: ConnectionAcks = noAcks();
  const waiting = new Set<string>();
  const heard = new Set<string>();
  /** Devices heard through the bridge, for diagnostics. */
  const devices = new HeardDevices();
  /** Keys of the messages made durable lately: a redelivery of one is acknowledged at once. */
  const durableKeys = new DurableKeys();
  const where = { url: cfg.url, clientId: cfg.clientId };
  let client: MqttClient;

  const spWill = () => {
    const w = sp?.will();
    return w && { ...w, payload: Buffer.from(w.payload) };
  };

  const open = (): MqttClient => {
    const c = mqtt.connect(cfg.url, { ...clientOptions(cfg, version, tls), will: spWill() });
    // the Sparkplug STATE will of each CONNECT carries the timestamp its birth repeats
    if (sp) c.on("reconnect", () => void (c.options.will = spWill()));
    c.on("connect", (connack) => {
      connected = connectedOnce = true;
      connectedAt = Date.now();
      backoff = MIN_BACKOFF_MS;
      c.options.reconnectPeriod = backoff;
      m.bridgeConnected.set(1);
      m.bridgeConnects.inc();
      log.info("bridge connected", {
        ...where,
        protocol: version === 5 ? "mqtt 5" : "mqtt 3.1.1",
        sessionPresent: connack.sessionPresent,
      });
      if (!connack.sessionPresent) subscribe(c);
      sp?.connected().catch((err) => log.warn("cannot publish the Sparkplug STATE birth", { err }));
      o.republish().catch((err) => log.warn("cannot republish desired state", { err }));
      for (const twin of waiting) o.onCommandsListening?.(twin);
      waiting.clear();
      heard.clear();
    });
    c.on("close", () => {
      acks.queue.close();
      if (connected) log.warn("bridge disconnected; reconnecting", where);
      else if (c === client && !closed && notices.oncePerMinute("\u0000bridge")) {
        // e.g. nats-server's MQTT closes on a will topic with a "." (Sparkplug's spBv1.0/…)
        log.warn("bridge cannot connect to the broker; retrying", {
          ...where,
          error: "the broker closed the connection before its CONNACK",
        });
      }
      connected = false;
      m.bridgeConnected.set(0);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      c.options.reconnectPeriod = backoff;
    });
    c.on("error", (err: Error & { code?: number | string }) => {
      if (closed) return;
      if (version === 5 && !connectedOnce && (err.code === 1 || err.code === 132)) {
        log.info("the broker does not speak MQTT 5; using MQTT 3.1.1", where);
        version = 4;
        c.end(true);
        client = open();
        return;
      }
      if (notices.oncePerMinute("\u0000bridge")) {
        log.warn("bridge cannot connect to the broker; retrying", {
          ...where,
          error: err.message,
          ...(typeof err.code === "number" ? { reasonCode: err.code } : {}),
        });
      }
    });
    c.handleMessage = (p, callback) => {
      m.bridgeReceived.inc({ redelivered: p.dup ? "true" : "false" });
      const payload = typeof p.payload === "string" ? Buffer.from(p.payload) : p.payload;
      const key = p.qos > 0
        ? messageKey({ clientId: cfg.clientId, messageId: p.messageId }, p.topic, payload)
        : 0;
      let durable: Promise<void> | null;
      try {
        // a resend of a message made durable lately: acknowledged, not taken again
        durable = p.dup && p.qos > 0 && durableKeys.has(key)
          ? null
          : intake(parts, { ...p, payload }, Date.now());
      } catch (err) {
        durable = Promise.reject(err);
      }
      if (durable && p.qos > 0) durable.then(() => durableKeys.add(key), () => {});
      if (durable && p.topic.startsWith("twins/")) {
        const twin = p.topic.split("/", 2)[1];
        devices.heard(twin, Date.now());
        if (!p.topic.endsWith("/result")) listening(twin, durable);
      }
      if (p.qos === 0) {
        // QoS 0 is lost by definition; counted, logged once a minute (a stop may fail many)
        durable?.catch((err) => {
          m.messagesRejected.inc({ reason: "not_durable" });
          if (notices.oncePerMinute("\u0000bridge not_durable")) {
            log.warn("cannot make a QoS 0 message durable", { err });
          }
        });
        return callback();
      }
      // MQTT.js emits "connect" only after resending its own stored packets: a redelivery may
      // come first, so the acknowledgements follow the connection (its stream), not the event
      if (acks.stream !== c.stream) {
        acks.queue.close();
        acks = connectionAcks(c, () => client, m, log);
      }
      acks.queue.push(p.messageId!, durable);
      // MQTT.js sends no PUBACK and reads on (ours follows when durable) — but only with fewer
      // than our Receive Maximum unacknowledged: mosquitto 2.0 sends past it once PUBACKs flow,
      // and a twin must still hold the key of every message that may come again (RECENT_KEYS)
      acks.queue.onRoom(RECEIVE_MAXIMUM, () => callback(HELD));
    };
    return c;
  };

  /** A twin's device spoke (its message accepted): offer its queued commands, once. */
  const listening = (twin: string, durable: Promise<void>) => {
    if (!o.onCommandsListening || heard.has(twin) || heard.size >= MAX_HEARD_TWINS) return;
    heard.add(twin);
    durable.then(() => o.onCommandsListening!(twin), () => heard.delete(twin));
  };

  const subscribe = (c: MqttClient) =>
    subscribeTwins(c, {
      share: cfg.share,
      extra: sp ? o.sparkplug!.filters : [],
      version,
      log,
      where,
    });

  /**
   * Publish QoS 1; resolves true once the broker acknowledged it, false after `waitMs`. An
   * `expirySec` is sent as the Message Expiry Interval on an MQTT 5 link.
   */
  const publish = (
    topic: string,
    payload: string | Uint8Array,
    retain: boolean,
    waitMs = 0,
    expirySec = 0,
  ) =>
    new Promise<boolean>((resolve) => {
      const timer = waitMs > 0 ? setTimeout(() => resolve(false), waitMs) : undefined;
      const body = typeof payload === "string" ? Buffer.from(payload) : Buffer.from(payload);
      const expiry = expirySec > 0 && version === 5
        ? { properties: { messageExpiryInterval: expirySec } }
        : {};
      client.publish(topic, body, { qos: 1, retain, ...expiry }, (err) => {
        clearTimeout(timer);
        if (err) log.warn("cannot publish to the broker", { topic: topic.slice(0, 200), err });
        resolve(!err);
      });
      if (waitMs === 0) resolve(true);
    });

  client = open();
  log.info("bridge connecting", { ...where, share: cfg.share ?? null });

  return {
    name: "bridge",
    get connected() {
      return connected;
    },
    status: () => ({
      ...where,
      connected,
      protocol: version === 5 ? "mqtt 5" : "mqtt 3.1.1",
      share: cfg.share ?? null,
      unacknowledged: acks.queue.size,
    }),
    publishDesired(id, desired) {
      // every node hears a twin's downlink; the one hosting it publishes (the reconnect
      // republishes what changes while disconnected)
      if (!connected || !o.owns(id)) return Promise.resolve();
      m.bridgePublished.inc({ kind: "desired" });
      const body = JSON.stringify(desired);
      return publish(`twins/${id}/desired`, body, true, 0, o.desiredExpirySec).then(() => {});
    },
    async deliverCommands(twin: string, commands: Command[]) {
      if (!o.owns(twin)) return [];
      if (!connected) {
        if (waiting.size < MAX_WAITING_TWINS) waiting.add(twin);
        return [];
      }
      const sent = await Promise.all(commands.map(async (cmd) => {
        const body = JSON.stringify(commandPayload(cmd));
        const ok = await publish(`twins/${twin}/commands/${cmd.id}`, body, false, COMMAND_ACK_MS);
        if (ok) m.bridgePublished.inc({ kind: "command" });
        return ok ? cmd.id : null;
      }));
      return sent.filter((id): id is string => id !== null);
    },
    disconnect: () => 0, // devices log in to the plant's broker, not to twinmill
    disconnectCert: () => 0,
    async reloadTls() {
      tls = await readTlsFiles(cfg);
      Object.assign(client.options, clientOptions(cfg, version, tls), {
        reconnectPeriod: backoff,
      });
    },
    devicesConnected: 0, // the plant's broker has the sessions
    connection: (twin) =>
      bridgedConnection(devices, twin, {
        url: cfg.url,
        clientId: cfg.clientId,
        protocol: version === 5 ? "mqtt 5" : "mqtt 3.1.1",
        connected,
        connectedAt,
      }),
    rejections: (twin) => rejections.of(twin),
    async [Symbol.asyncDispose]() {
      if (closed) return;
      closed = true;
      acks.queue.close();
      if (sp && connected) {
        await sp.detach().catch((err) =>
          log.warn("cannot publish Sparkplug STATE offline", { err })
        );
      }
      connected = false; // not "disconnected; reconnecting"
      await client.endAsync(true);
      m.bridgeConnected.set(0);
      log.info("bridge closed", where);
    },
  };
}
