/**
 * The embedded MQTT broker (aedes on `node:net`), behind a small seam so it can be swapped
 * (aedes 1.x speaks MQTT 3.1.1; 2.x adds MQTT 5).
 *
 * Device messages are validated in `authorizePublish` and handed to the ingest; aedes sends
 * the PUBACK only when that hook calls back, i.e. after the message is durable. Invalid
 * messages are acknowledged (as mosquitto does with denied publishes under MQTT 3.1.1, so a
 * device does not retry forever) but dropped: they never reach a twin, a subscriber or
 * InfluxDB; they are counted by reason and logged once per device per minute.
 * @module
 */
import { Aedes, type AuthorizePublishHandler, type Client } from "aedes";
import { createServer, type Server } from "node:net";
import tls from "node:tls";
import type { Duplex } from "node:stream";
import { normSerial } from "../security/device_auth.ts";
import {
  certificateTwin,
  handshakeRefusal,
  isTlsConnection,
  peerAddress,
  type TlsListener,
  tlsServerOptions,
  verifiedPeerCertificate,
} from "../connectors/mqtt/tls.ts";
import { Buffer } from "node:buffer";
import { guardPacketSize, type Oversize } from "../connectors/mqtt/packet_guard.ts";
import {
  isValidTwinId,
  parseDeviceBody,
  parseDeviceTopic,
  type RejectReason,
} from "../../actors/validate.ts";
import type { JsonLimits } from "../../actors/json_intake.ts";
import type { IngestPort } from "./ingest.ts";
import type { Logger } from "../obs/log.ts";
import type { Metrics } from "../obs/metrics.ts";
import { RateLimiter } from "../security/rate_limit.ts";
import { type Command, commandPayload } from "../../actors/commands.ts";

/** A running broker. */
export interface Broker extends AsyncDisposable {
  port: number;
  /** Publish a twin's desired state to its device: retained, QoS 1. */
  publishDesired(id: string, desired: unknown): Promise<void>;
  /** Disconnect the devices of `twin` connected with credential `credential`; how many. */
  disconnect(twin: string, credential: string): number;
  /** Disconnect the devices connected with the client certificate `serial`; how many. */
  disconnectCert(serial: string): number;
  /** Port of the TLS listener, if any. */
  tlsPort?: number;
  /** Re-read the TLS certificate, key and CA (SIGHUP); new connections use them. */
  reloadTls(): Promise<void>;
  /**
   * Publish commands (QoS 1) to `twins/{twin}/commands/{id}` if a client of the twin listens
   * there; the ids published (none when nobody listens: they stay queued).
   */
  deliverCommands(twin: string, commands: Command[]): Promise<string[]>;
  /** Devices with a session on this node (clients that spoke for a twin). */
  readonly devicesConnected: number;
  /** The twin's live MQTT session on this node, if any (diagnostics). */
  connection(twin: string): ConnectionInfo | null;
  /** The twin's recently rejected messages on this node, newest last (diagnostics). */
  rejections(twin: string): Rejection[];
}

/** A device's live MQTT session. */
export interface ConnectionInfo {
  clientId: string;
  /** e.g. `mqtt 3.1.1` or `mqtts 3.1.1`. */
  protocol: string;
  /** ms since the epoch. */
  connectedAt: number;
  /** True when it listens for commands. */
  commands: boolean;
}

/** A rejected device message. */
export interface Rejection {
  at: number;
  reason: RejectReason;
  topic: string;
}

/** Rejections kept per device, and devices with rejections kept per node. */
const KEEP_REJECTIONS = 10;
const MAX_REJECTING_DEVICES = 10_000;

/** The twin whose commands an MQTT subscription filter receives, if it names one. */
export function commandListenerOf(filter: string): string | undefined {
  const m = /^twins\/([^/]+)\/(commands\/(\+|#)|#)$/.exec(filter);
  return m && isValidTwinId(m[1]) ? m[1] : undefined;
}

/** Device authentication: the credential id a token belongs to for a twin, or null. */
export interface DeviceVerifier {
  verify(twin: string, token: string): Promise<string | null>;
}

export { certificateTwin, type ClientCa, type TlsListener } from "../connectors/mqtt/tls.ts";

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
  /** Limits of the JSON intake for device payloads (default `DEFAULT_JSON_LIMITS`). */
  jsonLimits?: JsonLimits;
  /**
   * Authentication failures allowed per source address and per identity (username) before
   * further connects from it are refused unchecked (CONNACK 3); defaults: a burst of 50 then
   * 5 a second per source, a burst of 10 then 1 a second per identity. Every attempt takes a
   * token while it is checked; one that does not fail gives it back.
   */
  authFailureRate?: { source: RateLimiter; identity: RateLimiter };
  /** Every refused connect and ACL denial (audit). */
  onDenied?(
    e: { device: string; action: "connect" | "publish" | "subscribe"; reason: string },
  ): void;
}

/** What the broker needs for provisioning over MQTT (see `BrokerOptions.provisioning`). */
export interface ProvisioningPort {
  /** Null when `key` may provision now; else the reason it may not (logged, never the key). */
  check(key: string): Promise<string | null>;
  /** Answer one request; the result is published as JSON on the client's response topic. */
  handle(key: string, clientId: string, payload: Uint8Array): Promise<unknown>;
}

/** Username of a client that logs in with a provisioning key. */
export const PROVISION_USERNAME = "$provision";

/** The request and response topics of a provisioning client. */
export function provisionTopics(clientId: string): { request: string; response: string } {
  return { request: `provision/${clientId}/request`, response: `provision/${clientId}/response` };
}

/** Provisioning keys of clients logged in as `$provision` (only in memory, never logged). */
const provisioners = new WeakMap<object, string>();

/** What an authenticated device is: its twin and credential (kept on the aedes client). */
interface Identity {
  twin: string;
  credential: string;
}

const identities = new WeakMap<object, Identity>();

/** Topic kinds a device may publish to its own twin. */
const DEVICE_PUBLISH = new Set(["telemetry", "reported", "status", "command_result"]);

/** True when an authenticated device of `twin` may subscribe to `filter`. */
export function deviceMaySubscribe(twin: string, filter: string): boolean {
  const own = `twins/${twin}/`;
  if (!filter.startsWith(own)) return false;
  const rest = filter.slice(own.length);
  if (rest === "desired" || rest === "commands/+") return true;
  // one command: commands/{cmdId} with no wildcard
  return /^commands\/[^/+#]+$/.test(rest);
}

const DROP_TOPIC = "$SYS/twinmill/rejected";
const DROP_LEVELS = DROP_TOPIC.split("/");

/** True when an MQTT topic filter matches the topic rejected messages are diverted to. */
export function matchesDropTopic(filter: string): boolean {
  const f = filter.split("/");
  if (f[0] !== "$SYS") return false; // wildcards at the first level never match "$" topics
  for (let i = 1; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= DROP_LEVELS.length || (f[i] !== "+" && f[i] !== DROP_LEVELS[i])) return false;
  }
  return f.length === DROP_LEVELS.length;
}

/**
 * aedes reads a connection with one `read()` per `'readable'` event and expects it to return
 * the whole buffer. Deno's `node:net` can push more bytes during that `read()`; they stay
 * buffered and no further `'readable'` comes, so the connection stalls until the peer gives
 * up (seen with a 64 KiB PUBLISH about once in 30). Reading until the buffer is empty fixes it.
 */
export function readWholeBuffer<S extends Duplex>(sock: S): S {
  const read = sock.read.bind(sock);
  sock.read = (n?: number) => {
    if (n !== undefined && n !== null) return read(n);
    const first = read();
    if (first === null) return null;
    const more: Buffer[] = [];
    for (let b = read(); b !== null; b = read()) more.push(b);
    return more.length === 0 ? first : Buffer.concat([first, ...more]);
  };
  return sock;
}

/** Start the embedded broker. */
export async function startBroker(o: BrokerOptions): Promise<Broker> {
  /**
   * Client id -> the twin whose persistent (clean=false) session it is: another identity may
   * not connect with it while the session is stored (aedes would hand it that session). In
   * memory, like aedes's sessions; bounded, the oldest forgotten first.
   */
  const sessionOwners = new Map<string, string>();
  const rememberSessionOwner = (clientId: string, twin: string) => {
    sessionOwners.delete(clientId);
    sessionOwners.set(clientId, twin);
    if (sessionOwners.size > 100_000) sessionOwners.delete(sessionOwners.keys().next().value!);
  };
  const { logger: log, metrics: m } = o;
  /** Log lines keyed by device and kind: at most one per key per minute, bounded in keys. */
  const lastLogged = new Map<string, number>();
  const oncePerMinute = (key: string): boolean => {
    const now = Date.now();
    if ((lastLogged.get(key) ?? 0) + 60_000 > now) return false;
    if (lastLogged.size > 10_000) lastLogged.clear();
    lastLogged.set(key, now);
    return true;
  };

  const rejected = new Map<string, Rejection[]>();
  const reject = (
    packet: { topic: string; retain: boolean },
    key: string,
    reason: RejectReason,
  ) => {
    m.messagesRejected.inc({ reason });
    // least recently rejecting device first: it is the one forgotten when the map is full
    let ring = rejected.get(key);
    if (ring) rejected.delete(key);
    else if (rejected.size >= MAX_REJECTING_DEVICES) {
      rejected.delete(rejected.keys().next().value!);
    }
    rejected.set(key, ring ??= []);
    ring.push({ at: Date.now(), reason, topic: packet.topic.slice(0, 200) });
    if (ring.length > KEEP_REJECTIONS) ring.shift();
    if (oncePerMinute(key)) {
      log.warn("device message rejected", {
        device: key,
        topic: packet.topic.slice(0, 200),
        reason,
      });
    }
    packet.topic = DROP_TOPIC; // $SYS topics are not matched by "#"; nobody subscribes here
    packet.retain = false;
  };

  /**
   * Clients held to their own twin's topics: every client with device authentication on, and
   * a client identified by its certificate (mTLS) whatever device authentication says.
   */
  const restricted = (client: Client | null): boolean =>
    o.auth !== undefined || (client !== null && identities.has(client));

  /**
   * Whose diagnostics show a message with a bad topic: the connection's own twin when it has
   * one (a restricted client never speaks for others), else the twin the topic names
   * (`twins/cnc-10/telemetri`), else the client id.
   */
  const rejectedAs = (client: Client | null, topic: string, key: string): string => {
    const me = client ? identities.get(client)?.twin : undefined;
    if (me !== undefined) return me;
    if (restricted(client)) return key;
    const named = topic.split("/", 2);
    return named[0] === "twins" && isValidTwinId(named[1] ?? "") ? named[1] : key;
  };

  /**
   * THE ACL decision of what a client may hear: a subscription filter it asks for, and each
   * topic something is delivered to it on (commands go straight to their listeners, not
   * through aedes's topic tree, so delivery asks here too). Nobody hears the diverted
   * rejects; a provisioning client only its own answers; a restricted client only its own
   * twin's desired state and commands.
   */
  const mayReceive = (client: Client, topic: string): boolean => {
    if (matchesDropTopic(topic)) return false;
    if (provisioners.has(client)) return topic === provisionTopics(client.id).response;
    if (!restricted(client)) return true;
    const me = identities.get(client);
    return me !== undefined && deviceMaySubscribe(me.twin, topic);
  };

  /** Connections over their message rate, closing. */
  const tripped = new WeakSet<object>();
  /** Messages of a connection being made durable (closed over the rate only after them). */
  const inflight = new WeakMap<object, Set<Promise<void>>>();

  const authorizePublish: AuthorizePublishHandler = (client, packet, cb) => {
    const at = Date.now();
    const key = client?.id ?? "unknown";
    if (client && tripped.has(client)) return; // closing: not acknowledged, resent later
    const pkey = client ? provisioners.get(client) : undefined;
    if (pkey !== undefined && client) return provisionRequest(client, pkey, packet, cb);
    if (o.limiter && client && o.limiter.take(client.id) > 0) {
      m.rateLimited.inc({ what: "mqtt_message" });
      const twin = identities.get(client)?.twin ?? key;
      if (oncePerMinute(`rate\u0000${twin}`)) {
        log.warn("device over its message rate; disconnected", { device: twin });
      }
      // This message and later ones are never acknowledged (the device resends them after
      // reconnecting); the connection closes once the messages before it are acknowledged.
      tripped.add(client);
      Promise.allSettled([...(inflight.get(client) ?? [])]).then(() =>
        // deno-lint-ignore no-explicit-any
        (client as any).conn?.end?.()
      );
      return;
    }
    const t = parseDeviceTopic(packet.topic);
    if (typeof t === "string") {
      reject(packet, rejectedAs(client, packet.topic, key), t);
      return cb(null);
    }
    if (restricted(client)) {
      const me = client ? identities.get(client) : undefined;
      if (!me || t.twin !== me.twin || !DEVICE_PUBLISH.has(t.kind)) {
        // MQTT 3.1.1 has no negative PUBACK: acknowledged and dropped, as mosquitto does
        aclDenied(me?.twin ?? key, "publish", packet.topic);
        reject(packet, me?.twin ?? key, "acl_denied");
        return cb(null);
      }
    }
    const payload = packet.payload instanceof Uint8Array
      ? packet.payload
      : Buffer.from(String(packet.payload));
    const body = parseDeviceBody(t, payload, o.jsonLimits);
    if (typeof body === "string") {
      reject(packet, t.twin, body);
      return cb(null);
    }
    m.messagesIn.inc({ kind: t.kind });
    if (client) seen(client, t.twin);
    const origin = { clientId: key, messageId: packet.qos > 0 ? packet.messageId : undefined };
    const submitted = o.ingest.submit(t, body, packet.topic, payload, at, origin);
    if (client && o.limiter) {
      let set = inflight.get(client);
      if (!set) inflight.set(client, set = new Set());
      const s = set;
      s.add(submitted);
      submitted.finally(() => s.delete(submitted)).catch(() => {});
    }
    submitted.then(
      () => cb(null),
      (err) => {
        // MQTT 3.1.1 has no negative PUBACK: closing the connection makes the device resend
        m.messagesRejected.inc({ reason: "not_durable" });
        log.warn("cannot make a message durable; disconnecting the device so it resends", {
          device: t.twin,
          error: err instanceof Error ? err.message : String(err),
        });
        cb(err instanceof Error ? err : new Error(String(err)));
      },
    );
  };

  /** A provisioning client's publish: only its request topic, answered on its response topic. */
  const provisionRequest = (
    client: Client,
    pkey: string,
    packet: Parameters<AuthorizePublishHandler>[1],
    cb: Parameters<AuthorizePublishHandler>[2],
  ) => {
    const topics = provisionTopics(client.id);
    if (packet.topic !== topics.request) {
      aclDenied(PROVISION_USERNAME, "publish", packet.topic);
      reject(packet, client.id, "acl_denied");
      return cb(null);
    }
    const payload = packet.payload instanceof Uint8Array
      ? packet.payload
      : Buffer.from(String(packet.payload));
    packet.topic = DROP_TOPIC; // the request goes to nobody else
    packet.retain = false;
    // deno-lint-ignore no-explicit-any
    if ((client as any).closed) return cb(null); // its will message: nobody would hear the answer
    o.provisioning!.handle(pkey, client.id, payload).then(
      (answer) => answer,
      (err) => {
        log.error("provisioning request failed", { client: client.id.slice(0, 128), err });
        return { status: "error", error: { code: "internal", message: "Provisioning failed" } };
      },
    ).then((answer) => {
      // straight to this client, not through the topic tree: the answer holds its token, and
      // another client subscribed to `#` or `provision/+/response` (no device auth) must not
      // hear it
      client.publish({
        cmd: "publish",
        topic: topics.response,
        payload: Buffer.from(JSON.stringify(answer)),
        qos: 1,
        retain: false,
        dup: false,
      }, () => cb(null));
    });
  };

  const live = new Set<Client>();
  /**
   * The twin each client last spoke for, every twin it spoke for (a gateway speaks for many),
   * and each twin's latest session on this node.
   */
  const twinOf = new WeakMap<Client, string>();
  const twinsOf = new WeakMap<Client, Set<string>>();
  const sessions = new Map<string, { client: Client; since: number }>();
  const seen = (c: Client, twin: string) => {
    if (twinOf.get(c) === twin && sessions.get(twin)?.client === c) return;
    twinOf.set(c, twin);
    let all = twinsOf.get(c);
    if (!all) twinsOf.set(c, all = new Set());
    all.add(twin);
    if (sessions.get(twin)?.client !== c) sessions.set(twin, { client: c, since: Date.now() });
  };
  /** Clients listening for commands, by twin; twins each client listens for. */
  const listeners = new Map<string, Set<Client>>();
  const listening = new WeakMap<Client, Set<string>>();
  /** Close the authenticated connections whose identity matches; how many. */
  const drop = (match: (me: Identity) => boolean): number => {
    let n = 0;
    for (const c of live) {
      const me = identities.get(c);
      if (me && match(me)) {
        c.close();
        n++;
      }
    }
    return n;
  };
  const aclDenied = (twin: string, action: "publish" | "subscribe", topic: string) => {
    m.aclDenials.inc({ action });
    o.onDenied?.({ device: twin, action, reason: `acl: ${topic.slice(0, 200)}` });
    if (oncePerMinute(`${twin}\u0000${action}`)) {
      log.warn("device denied by the ACL", { device: twin, action, topic: topic.slice(0, 200) });
    }
  };
  const authFailed = (
    client: { id: string },
    username: string | undefined,
    reason: string,
    error?: string,
  ) => {
    m.authFailures.inc({ reason });
    o.onDenied?.({ device: (username ?? client.id).slice(0, 128), action: "connect", reason });
    if (oncePerMinute(`${username ?? ""}\u0000${reason}`)) {
      // never the password
      log.warn("device authentication failed", {
        device: username?.slice(0, 128),
        client: client.id.slice(0, 128),
        reason,
        ...(error ? { error } : {}),
      });
    }
  };
  const failures = o.authFailureRate ?? {
    source: new RateLimiter({ rate: 5, burst: 50, maxKeys: 50_000 }),
    identity: new RateLimiter({ rate: 1, burst: 10, maxKeys: 50_000 }),
  };
  const authenticate = (
    client: { id: string },
    username: string | undefined,
    password: Buffer | undefined,
    reply: (error: (Error & { returnCode: 4 | 5 }) | null, success: boolean | null) => void,
  ) => {
    // deno-lint-ignore no-explicit-any
    const source = `${peerAddress((client as any).conn)}`;
    const who = username === undefined ? undefined : `u:${username.slice(0, 256)}`;
    // Every attempt takes a failure token up front (so concurrent guesses cannot all pass
    // before the first fails); one that does not fail gives it back.
    let throttledBy: "source" | "identity" | null = null;
    if (failures.source.take(source) > 0) throttledBy = "source";
    else if (who !== undefined && failures.identity.take(who) > 0) {
      failures.source.refund(source);
      throttledBy = "identity";
    }
    let settled = false;
    const refund = () => {
      if (settled) return;
      settled = true;
      failures.source.refund(source);
      if (who !== undefined) failures.identity.refund(who);
    };
    const done = (
      error: (Error & { returnCode: 4 | 5 }) | null,
      success: boolean | null,
    ) => {
      // only a refused credential counts as a failure (not a full node or a store outage)
      if (!(error && error.returnCode === 4)) refund();
      settled = true;
      reply(error, success);
    };
    if (throttledBy) {
      settled = true; // nothing taken
      // too many failures: refused without checking anything (CONNACK 3: back off, retry)
      m.authThrottled.inc({ by: throttledBy });
      if (oncePerMinute(`throttled\u0000${throttledBy === "source" ? source : who}`)) {
        log.warn("MQTT authentication throttled after repeated failures", {
          by: throttledBy,
          from: source,
          device: username?.slice(0, 128),
        });
      }
      const err = Object.assign(new Error("Server unavailable"), { returnCode: 3 as const });
      return reply(err as unknown as Error & { returnCode: 4 }, false);
    }
    const refuse = (reason: string) => {
      authFailed(client, username, reason);
      const err = Object.assign(new Error("Bad username or password"), { returnCode: 4 as const });
      done(err, false);
    };
    /**
     * A restricted client is who it says: its session (client id) must not be another
     * identity's. A client id held by a live connection of another twin is refused (CONNACK
     * 5) — no takeover across identities — except the twin's own id, which it always gets.
     */
    const admit = (me: Identity) => {
      // deno-lint-ignore no-explicit-any
      const holder = (client as any).broker?.clients?.[client.id] as Client | undefined;
      const theirs = holder && holder !== client ? identities.get(holder) : undefined;
      // a persistent session stored for another twin is theirs too, while they are offline
      const stored = sessionOwners.get(client.id);
      const heldByOther = (holder && holder !== client && theirs?.twin !== me.twin) ||
        (stored !== undefined && stored !== me.twin);
      if (heldByOther && client.id !== me.twin) {
        authFailed(client, username, "client_id_held_by_another_device");
        const err = Object.assign(new Error("Not authorized"), { returnCode: 5 as const });
        return done(err as unknown as Error & { returnCode: 4 }, false);
      }
      identities.set(client, me);
      // deno-lint-ignore no-explicit-any
      if ((client as any).clean === false) rememberSessionOwner(client.id, me.twin);
      else if (stored !== undefined && client.id === me.twin) sessionOwners.delete(client.id);
      done(null, true);
    };
    if (o.maxConnections !== undefined && live.size >= o.maxConnections) {
      // CONNACK 3: the device backs off and tries again (another node, later)
      m.rateLimited.inc({ what: "mqtt_connection" });
      const err = Object.assign(new Error("Server unavailable"), { returnCode: 3 as const });
      return done(err as unknown as Error & { returnCode: 4 }, false);
    }
    if (username === PROVISION_USERNAME) {
      if (!o.provisioning) return refuse("provisioning_disabled");
      if (!password || password.length === 0) return refuse("missing_provisioning_key");
      // the client id is a level of its topics
      if (!/^[\w.:-]{1,128}$/.test(client.id)) return refuse("bad_client_id");
      const key = password.toString();
      o.provisioning.check(key).then((why) => {
        if (why) return refuse(why);
        provisioners.set(client, key);
        done(null, true);
      }, (err) => {
        log.error("cannot check a provisioning key", { err });
        const e = Object.assign(new Error("Server unavailable"), { returnCode: 3 as const });
        done(e as unknown as Error & { returnCode: 4 }, false);
      });
      return;
    }
    // deno-lint-ignore no-explicit-any
    const conn = (client as any).conn;
    const mtls = o.tls?.clientCa;
    if (mtls && isTlsConnection(conn)) {
      // mTLS, whatever device authentication says: the certificate names the twin, no token
      // needed. The handshake already required one that the CA issued.
      const cert = verifiedPeerCertificate(conn);
      if (!cert?.serialNumber) return refuse("missing_client_certificate");
      const twin = certificateTwin(cert);
      if (!twin) return refuse("certificate_without_twin_id");
      if (username && username !== twin) return refuse("username_is_not_the_certificate_twin");
      const serial = normSerial(cert.serialNumber);
      mtls.isRevoked(serial).then((revoked) => {
        if (revoked) return refuse("certificate_revoked");
        admit({ twin, credential: `cert:${serial}` });
      }, (err) => {
        log.error("cannot check certificate revocation", { device: twin, err });
        const e = Object.assign(new Error("Server unavailable"), { returnCode: 3 as const });
        done(e as unknown as Error & { returnCode: 4 }, false);
      });
      return;
    }
    if (!o.auth) return done(null, true);
    if (!username || !password || password.length === 0) return refuse("missing_credentials");
    if (!isValidTwinId(username)) return refuse("bad_username");
    o.auth.verify(username, password.toString()).then(
      (credential) => {
        if (!credential) return refuse("bad_credentials");
        admit({ twin: username, credential });
      },
      (err) => {
        log.error("cannot check device credentials", { device: username, err });
        const e = Object.assign(new Error("Server unavailable"), { returnCode: 3 as const });
        done(e as unknown as Error & { returnCode: 4 }, false);
      },
    );
  };

  const aedes = await Aedes.createBroker({
    authorizePublish,
    authenticate: authenticate as never,
    // nobody may watch the diverted rejects (negative SUBACK, 0x80); with device auth, a
    // device may subscribe only to its own desired state and commands
    authorizeSubscribe: (client, sub, cb) => {
      if (mayReceive(client, sub.topic)) return cb(null, sub);
      if (!matchesDropTopic(sub.topic)) {
        const who = provisioners.has(client)
          ? PROVISION_USERNAME
          : identities.get(client)?.twin ?? client.id;
        aclDenied(who, "subscribe", sub.topic);
      }
      cb(null, null);
    },
    queueLimit: 1000,
    // A subscriber that stops reading must not stall delivery, and with it the PUBACKs of
    // every device (aedes waits for delivery before reading a connection's next packets).
    drainTimeout: 5000,
    concurrency: 1000,
  });
  aedes.on("client", (c) => {
    live.add(c);
    m.mqttConnections.inc();
    const me = identities.get(c);
    if (me) seen(c, me.twin);
  });
  // a persistent session (clean = false) gets its subscriptions back without a SUBSCRIBE;
  // once it has its CONNACK, it hears what is queued for it
  aedes.on("clientReady", (c) => {
    // deno-lint-ignore no-explicit-any
    for (const topic of Object.keys((c as any).subscriptions ?? {})) listen(c, topic);
  });
  aedes.on("clientDisconnect", (c) => {
    live.delete(c);
    m.mqttConnections.dec();
    for (const twin of twinsOf.get(c) ?? []) {
      if (sessions.get(twin)?.client === c) sessions.delete(twin);
    }
    twinsOf.delete(c);
    for (const t of listening.get(c) ?? []) unlisten(c, t);
    listening.delete(c);
  });
  const unlisten = (c: Client, twin: string) => {
    const who = listeners.get(twin);
    who?.delete(c);
    if (who?.size === 0) listeners.delete(twin);
  };
  const listen = (c: Client, topic: string) => {
    const twin = commandListenerOf(topic);
    // aedes announces refused filters too (granted 0x80): those listen for nothing
    if (!twin || !mayReceive(c, topic)) return;
    seen(c, twin);
    let set = listening.get(c);
    if (!set) listening.set(c, set = new Set());
    set.add(twin);
    let who = listeners.get(twin);
    if (!who) listeners.set(twin, who = new Set());
    who.add(c);
    o.onCommandsListening?.(twin);
  };
  aedes.on("subscribe", (subs, c) => {
    if (c) { for (const sub of subs) listen(c, sub.topic); }
  });
  aedes.on("unsubscribe", (topics, c) => {
    if (!c) return;
    for (const topic of topics) {
      const twin = commandListenerOf(topic);
      if (!twin) continue;
      listening.get(c)?.delete(twin);
      unlisten(c, twin);
    }
  });

  /** A connection cut for a packet announced over its size limit (before buffering it). */
  const oversize = (sock: Duplex) => (why: Oversize) => {
    const from = `${peerAddress(sock)}`;
    if (why === "packet_too_large") m.messagesRejected.inc({ reason: "too_large" });
    else authFailed({ id: `net:${from}` }, undefined, why);
    if (oncePerMinute(`oversize\u0000${from}`)) {
      log.warn("MQTT packet over its size limit; connection closed", { from, reason: why });
    }
  };
  const accept = (sock: Duplex) =>
    aedes.handle(guardPacketSize(readWholeBuffer(sock), oversize(sock)));
  const server: Server = createServer(accept);
  await new Promise<void>((resolve, rejectP) => {
    server.once("error", rejectP);
    server.listen(o.port, o.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : o.port;

  let tlsServer: tls.Server | undefined;
  let tlsPort: number | undefined;
  if (o.tls) {
    const t = o.tls;
    tlsServer = tls.createServer(
      await tlsServerOptions(t),
      accept,
    );
    const srv = tlsServer;
    // a refused handshake (no certificate, one the CA did not issue, a client that does not
    // trust ours) never reaches CONNECT: count, audit and log it here
    srv.on("tlsClientError", (err: Error & { code?: string }, sock: tls.TLSSocket) => {
      const from = { id: `tls:${peerAddress(sock)}` };
      authFailed(from, undefined, handshakeRefusal(err), err.message);
    });
    await new Promise<void>((resolve, rejectP) => {
      srv.once("error", rejectP);
      srv.listen(t.port, t.host, () => resolve());
    });
    const a = srv.address();
    tlsPort = typeof a === "object" && a ? a.port : t.port;
  }

  return {
    port,
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
          },
          (err?: Error) => {
            if (err) log.error("cannot publish desired state to device", { device: id, err });
            resolve();
          },
        );
      });
    },
    disconnect(twin, credential) {
      const n = drop((me) => me.twin === twin && me.credential === credential);
      if (n > 0) log.info("disconnected devices of a revoked credential", { twin, credential, n });
      return n;
    },
    disconnectCert(serial) {
      const n = drop((me) => me.credential === `cert:${serial}`);
      if (n > 0) log.info("disconnected devices of a revoked certificate", { serial, n });
      return n;
    },
    async deliverCommands(twin, commands) {
      // Straight to the clients listening for this twin's commands, not through the topic
      // tree: on a session takeover (same client id reconnecting) aedes can drop the new
      // connection's restored subscription from its matcher, and a command routed there would
      // reach nobody while counting as delivered. Closing connections are skipped.
      // Each delivery asks the same ACL as a subscription (`mayReceive`).
      // deno-lint-ignore no-explicit-any
      const open = [...(listeners.get(twin) ?? [])].filter((c) => !(c as any).closed);
      if (open.length === 0) return [];
      const sent = await Promise.all(commands.map(async (cmd) => {
        const topic = `twins/${twin}/commands/${cmd.id}`;
        const to = open.filter((c) => mayReceive(c, topic));
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
              if (err) log.warn("cannot publish a command to its device", { device: twin, err });
              resolve(!err);
            });
          })
        ));
        return results.some(Boolean) ? cmd.id : null;
      }));
      return sent.filter((id): id is string => id !== null);
    },
    connection(twin) {
      const s = sessions.get(twin);
      if (!s) return null;
      // deno-lint-ignore no-explicit-any
      const c = s.client as any;
      const version = c.version === 5 ? "5" : c.version === 3 ? "3.1" : "3.1.1";
      return {
        clientId: String(c.id),
        protocol: `${c.conn?.encrypted ? "mqtts" : "mqtt"} ${version}`,
        connectedAt: s.since,
        commands: listeners.get(twin)?.has(s.client) ?? false,
      };
    },
    rejections: (twin) => [...(rejected.get(twin) ?? [])],
    get devicesConnected() {
      return sessions.size;
    },
    tlsPort,
    async reloadTls() {
      if (!tlsServer || !o.tls) return;
      tlsServer.setSecureContext(await tlsServerOptions(o.tls));
      log.info("TLS certificate reloaded", { certFile: o.tls.certFile });
    },
    async [Symbol.asyncDispose]() {
      const tlsClosed = tlsServer
        ? new Promise<void>((r) => tlsServer!.close(() => r()))
        : Promise.resolve();
      const closed = new Promise<void>((r) => server.close(() => r()));
      await new Promise<void>((r) => aedes.close(() => r()));
      await closed;
      await tlsClosed;
    },
  };
}
