/**
 * Configuration from the environment (the contract's variables), validated with zod.
 * Invalid input → {@linkcode ConfigError} naming the variable; `main.ts` prints one line and
 * exits with code 2.
 * @module
 */
import { hostname } from "node:os";
import type { Role } from "../security/principal.ts";
import type { JsonLimits } from "../../actors/json_intake.ts";
import { ConfigError } from "./config_error.ts";
import { envSchema } from "./env_schema.ts";
import { firmwareKeys, parseApiKeys } from "./env_lists.ts";
import { type BridgeConfig, bridgeConfig } from "./bridge_config.ts";
import { type NatsClientConfig, natsClientConfig, secretOf } from "./nats_auth.ts";

/** The validated node configuration. */
export interface Config {
  http: {
    port: number;
    host: string;
    /** Time a new connection has to send a complete request head (ms). */
    headerTimeoutMs: number;
    /** Time a connection may stay open with no request in progress (ms). */
    idleTimeoutMs: number;
    /** Open HTTP connections at most. */
    maxConnections: number;
  };
  mqtt: {
    port: number | null;
    host: string;
    auth: boolean;
    /** QoS 1/2 messages a device connection may have unacknowledged (MQTT 5 Receive Maximum). */
    receiveMaximum: number;
    /** The bridge from the plant's broker (`TWINMILL_MQTT_URL`), when set. */
    bridge?: BridgeConfig;
  };
  natsUrl?: string;
  /** Cluster mode: how the node authenticates to NATS and verifies its TLS. */
  nats?: NatsClientConfig;
  /**
   * Cluster mode: how long start-up waits for NATS and JetStream before it gives up (ms;
   * `TWINMILL_STARTUP_TIMEOUT` in seconds); 0 = wait forever.
   */
  startupTimeoutMs: number;
  nodeId: string;
  shards: number;
  dataDir: string;
  influx?: {
    url: string;
    api: "v1" | "v2";
    /** `INFLUX_TOKEN`, or read at start from `INFLUX_TOKEN_FILE`. */
    token?: string;
    org?: string;
    bucket?: string;
    db: string;
    /** `INFLUX_CA`: PEM file of a private CA that signed InfluxDB's HTTPS certificate. */
    caFile?: string;
  };
  /** API keys by key: role and optional site scope. */
  apiKeys: Map<string, { role: Role; site?: string }>;
  jwt?: {
    secret?: string;
    publicKeyFile?: string;
    jwksFile?: string;
    issuer?: string;
    audience?: string;
    /** Seconds an expired (or not yet valid) token is still accepted; default 0. */
    clockToleranceSec: number;
  };
  /** Requests per second per API key / JWT subject (burst: 2 s worth). */
  httpRate: number;
  /** Messages per second per MQTT connection (burst: 2 s worth); 0 = no limit. */
  deviceRate: number;
  /**
   * MQTT 5 Message Expiry Interval (s) of the retained desired state on the embedded broker and
   * on the plant's broker (bridge over MQTT 5): a device subscribing later gets it only within
   * that time; 0 = it never expires.
   */
  desiredExpirySec: number;
  /** MQTT connections this node takes at most. */
  maxConnections: number;
  /** TLS: MQTT on `mqttsPort` and HTTPS on the HTTP port; device certificates with `caFile`. */
  tls?: {
    certFile: string;
    keyFile: string;
    caFile?: string;
    revokedFile?: string;
    mqttsPort: number;
  };
  /** `TWINMILL_LOG`: a level, or a level and module overrides (`info,mqtt=debug`). */
  log: string;
  /** Idle time before a twin is passivated (ms). */
  idleMs: number;
  /** Unretired inbound messages above which acknowledgements are held back. */
  maxPending: number;
  /** Time between two ticks of the firmware campaign driver (ms). */
  campaignTickMs: number;
  /** Firmware images: size bounds, Ed25519 public key files, unsigned images refused. */
  firmware: {
    maxBytes: number;
    storeMaxBytes: number;
    keyFiles: string[];
    requireSigned: boolean;
  };
  /**
   * What clients and devices may send: the JSON intake's bounds (HTTP bodies and MQTT
   * payloads) and the size limit of a twin's state in bytes.
   */
  limits: { json: JsonLimits; twinMaxBytes: number };
  /**
   * The Sparkplug B host application (`TWINMILL_SPARKPLUG=on`): its STATE host id, edge nodes
   * followed at most, devices per edge node, metrics per message (a birth).
   */
  sparkplug?: { hostId: string; maxEdgeNodes: number; maxDevices: number; maxMetrics: number };
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

/** True for a loopback bind address. */
function isLoopback(h: string): boolean {
  return LOOPBACK.has(h) || h.startsWith("127.");
}

/** Parse and check the environment. Throws {@linkcode ConfigError}. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const clean = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ""),
  );
  const r = envSchema.safeParse(clean);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new ConfigError(String(issue.path[0]), issue.message);
  }
  const e = r.data;
  const apiKeys = parseApiKeys(e.TWINMILL_API_KEYS);
  const jwtSources = [
    e.TWINMILL_JWT_SECRET,
    e.TWINMILL_JWT_PUBLIC_KEY_FILE,
    e.TWINMILL_JWT_JWKS_FILE,
  ]
    .filter((x) => x !== undefined);
  if (jwtSources.length > 1) {
    throw new ConfigError(
      "TWINMILL_JWT_SECRET",
      "set only one of TWINMILL_JWT_SECRET, TWINMILL_JWT_PUBLIC_KEY_FILE, TWINMILL_JWT_JWKS_FILE",
    );
  }
  if (!isLoopback(e.TWINMILL_HTTP_HOST) && apiKeys.size === 0 && jwtSources.length === 0) {
    throw new ConfigError(
      "TWINMILL_HTTP_HOST",
      `binding to non-loopback address "${e.TWINMILL_HTTP_HOST}" requires API keys (TWINMILL_API_KEYS) or JWT auth`,
    );
  }
  if ((e.TWINMILL_TLS_CERT === undefined) !== (e.TWINMILL_TLS_KEY === undefined)) {
    throw new ConfigError(
      e.TWINMILL_TLS_CERT === undefined ? "TWINMILL_TLS_CERT" : "TWINMILL_TLS_KEY",
      "TWINMILL_TLS_CERT and TWINMILL_TLS_KEY go together",
    );
  }
  for (
    const [name, file] of [
      ["TWINMILL_TLS_CERT", e.TWINMILL_TLS_CERT],
      ["TWINMILL_TLS_KEY", e.TWINMILL_TLS_KEY],
      ["TWINMILL_TLS_CA", e.TWINMILL_TLS_CA],
      ["TWINMILL_TLS_REVOKED", e.TWINMILL_TLS_REVOKED],
      ["TWINMILL_JWT_PUBLIC_KEY_FILE", e.TWINMILL_JWT_PUBLIC_KEY_FILE],
      ["TWINMILL_JWT_JWKS_FILE", e.TWINMILL_JWT_JWKS_FILE],
      ["INFLUX_CA", e.INFLUX_CA],
    ] as const
  ) {
    if (file === undefined) continue;
    try {
      Deno.statSync(file);
    } catch {
      throw new ConfigError(name, `cannot read file "${file}"`);
    }
  }
  if (e.TWINMILL_TLS_CA && !e.TWINMILL_TLS_CERT) {
    throw new ConfigError("TWINMILL_TLS_CA", "needs TWINMILL_TLS_CERT and TWINMILL_TLS_KEY");
  }
  const mqttAuth = e.TWINMILL_MQTT_AUTH === "on" ||
    (e.TWINMILL_MQTT_AUTH === undefined && !isLoopback(e.TWINMILL_MQTT_HOST));
  if (!isLoopback(e.TWINMILL_MQTT_HOST) && !mqttAuth) {
    throw new ConfigError(
      "TWINMILL_MQTT_AUTH",
      `binding MQTT to non-loopback address "${e.TWINMILL_MQTT_HOST}" requires device authentication on`,
    );
  }
  if (e.NATS_URL !== undefined) {
    for (const u of e.NATS_URL.split(",")) {
      if (!/^(nats|tls|ws|wss):\/\/[^\s,]+$/.test(u.trim()) && !/^[\w.-]+:\d+$/.test(u.trim())) {
        // without user info: a password in the URL is not printed
        const shown = u.replace(/^([a-z]+:\/\/)?[^@/]*@/i, "$1");
        throw new ConfigError("NATS_URL", `"${shown}" is not a NATS server URL (nats://host:port)`);
      }
    }
  }
  const bridge = bridgeConfig(e);
  if (e.TWINMILL_FIRMWARE_REQUIRE_SIGNED === "true" && !e.TWINMILL_FIRMWARE_KEYS) {
    throw new ConfigError(
      "TWINMILL_FIRMWARE_REQUIRE_SIGNED",
      "needs the public keys to verify with (TWINMILL_FIRMWARE_KEYS)",
    );
  }
  if (e.INFLUX_URL && e.INFLUX_API === "v2" && !e.INFLUX_BUCKET) {
    throw new ConfigError("INFLUX_BUCKET", "required when INFLUX_API=v2");
  }
  const influxToken = secretOf(e, "INFLUX_TOKEN");
  const nats = e.NATS_URL !== undefined ? natsClientConfig(e) : undefined;
  return {
    http: {
      port: e.TWINMILL_HTTP_PORT,
      host: e.TWINMILL_HTTP_HOST,
      headerTimeoutMs: e.TWINMILL_HTTP_HEADER_TIMEOUT * 1000,
      idleTimeoutMs: e.TWINMILL_HTTP_IDLE_TIMEOUT * 1000,
      maxConnections: e.TWINMILL_HTTP_MAX_CONNECTIONS,
    },
    mqtt: {
      port: e.TWINMILL_MQTT_PORT,
      host: e.TWINMILL_MQTT_HOST,
      auth: mqttAuth,
      receiveMaximum: e.TWINMILL_MQTT_RECEIVE_MAXIMUM,
      ...(bridge ? { bridge } : {}),
    },
    natsUrl: e.NATS_URL,
    ...(nats ? { nats } : {}),
    startupTimeoutMs: e.TWINMILL_STARTUP_TIMEOUT * 1000,
    nodeId: e.TWINMILL_NODE_ID ?? `${hostname()}-${Deno.pid}`.replace(/[^A-Za-z0-9_.-]/g, "_"),
    shards: e.TWINMILL_SHARDS,
    dataDir: e.TWINMILL_DATA_DIR,
    influx: e.INFLUX_URL
      ? {
        url: e.INFLUX_URL.replace(/\/+$/, ""),
        api: e.INFLUX_API,
        token: influxToken,
        org: e.INFLUX_ORG,
        bucket: e.INFLUX_BUCKET,
        db: e.INFLUX_DB,
        caFile: e.INFLUX_CA,
      }
      : undefined,
    apiKeys,
    jwt: jwtSources.length === 0 ? undefined : {
      secret: e.TWINMILL_JWT_SECRET,
      publicKeyFile: e.TWINMILL_JWT_PUBLIC_KEY_FILE,
      jwksFile: e.TWINMILL_JWT_JWKS_FILE,
      issuer: e.TWINMILL_JWT_ISSUER,
      audience: e.TWINMILL_JWT_AUDIENCE,
      clockToleranceSec: e.TWINMILL_JWT_CLOCK_TOLERANCE,
    },
    httpRate: e.TWINMILL_HTTP_RATE,
    deviceRate: e.TWINMILL_DEVICE_RATE,
    desiredExpirySec: e.TWINMILL_DESIRED_EXPIRY,
    maxConnections: e.TWINMILL_MAX_CONNECTIONS,
    tls: e.TWINMILL_TLS_CERT && e.TWINMILL_TLS_KEY
      ? {
        certFile: e.TWINMILL_TLS_CERT,
        keyFile: e.TWINMILL_TLS_KEY,
        caFile: e.TWINMILL_TLS_CA,
        revokedFile: e.TWINMILL_TLS_REVOKED,
        mqttsPort: e.TWINMILL_MQTTS_PORT,
      }
      : undefined,
    log: e.TWINMILL_LOG,
    idleMs: e.TWINMILL_IDLE_SECONDS * 1000,
    maxPending: e.TWINMILL_MAX_PENDING,
    campaignTickMs: e.TWINMILL_CAMPAIGN_TICK_MS,
    firmware: {
      maxBytes: e.TWINMILL_FIRMWARE_MAX_BYTES,
      storeMaxBytes: e.TWINMILL_FIRMWARE_STORE_MAX_BYTES,
      keyFiles: firmwareKeys(e.TWINMILL_FIRMWARE_KEYS),
      requireSigned: e.TWINMILL_FIRMWARE_REQUIRE_SIGNED === "true",
    },
    limits: {
      json: {
        maxDepth: e.TWINMILL_JSON_MAX_DEPTH,
        maxKeys: e.TWINMILL_JSON_MAX_KEYS,
        maxString: e.TWINMILL_JSON_MAX_STRING,
        maxArray: e.TWINMILL_JSON_MAX_ARRAY,
      },
      twinMaxBytes: e.TWINMILL_TWIN_MAX_BYTES,
    },
    sparkplug: e.TWINMILL_SPARKPLUG === "off" ? undefined : {
      hostId: e.TWINMILL_SPARKPLUG_HOST_ID,
      maxEdgeNodes: e.TWINMILL_SPARKPLUG_MAX_EDGE_NODES,
      maxDevices: e.TWINMILL_SPARKPLUG_MAX_DEVICES,
      maxMetrics: e.TWINMILL_SPARKPLUG_MAX_METRICS,
    },
  };
}
