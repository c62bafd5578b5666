/**
 * Configuration from the environment (the contract's variables), validated with zod.
 * Invalid input → {@linkcode ConfigError} naming the variable; `main.ts` prints one line and
 * exits with code 2.
 * @module
 */
import { z } from "zod";
import { type Role, ROLES } from "../security/principal.ts";
import { hostname } from "node:os";
import { parseLogSpec } from "../obs/log.ts";
import { createPublicKey } from "node:crypto";
import { basename, extname } from "node:path";
import { DEFAULT_JSON_LIMITS, type JsonLimits } from "../../actors/json_intake.ts";
import { DEFAULT_TWIN_MAX_BYTES } from "../../actors/twin_size.ts";

/** A configuration problem, naming the variable. */
export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(readonly variable: string, message: string) {
    super(`Invalid configuration: ${variable}: ${message}`);
  }
}

const port = (def: number) =>
  z.string().default(String(def)).transform((s, ctx) => {
    const n = Number(s);
    if (!/^\d+$/.test(s) || n > 65535) {
      ctx.addIssue({ code: "custom", message: `must be a port number 0-65535, got "${s}"` });
      return z.NEVER;
    }
    return n;
  });

const int = (def: number, min: number, max: number) =>
  z.string().default(String(def)).transform((s, ctx) => {
    const n = Number(s);
    if (!/^\d+$/.test(s) || n < min || n > max) {
      ctx.addIssue({ code: "custom", message: `must be an integer ${min}-${max}, got "${s}"` });
      return z.NEVER;
    }
    return n;
  });

/** Longest `TWINMILL_STARTUP_TIMEOUT` (30 days; `0` waits forever). */
const MAX_STARTUP_TIMEOUT_S = 30 * 86_400;

const host = z.string().min(1, "must not be empty").default("127.0.0.1");
const url = z.string().refine((s) => URL.canParse(s), "must be a URL");
const onOff = z.enum(["on", "off"], { message: 'must be "on" or "off"' });

const schema = z.object({
  TWINMILL_HTTP_PORT: port(8080),
  TWINMILL_HTTP_HOST: host,
  TWINMILL_HTTP_HEADER_TIMEOUT: int(10, 1, 3600),
  TWINMILL_HTTP_IDLE_TIMEOUT: int(60, 1, 86_400),
  TWINMILL_HTTP_MAX_CONNECTIONS: int(5_000, 1, 1_000_000),
  TWINMILL_MQTT_PORT: z.string().default("1883").transform((s, ctx) => {
    if (s === "off") return null;
    const n = Number(s);
    if (!/^\d+$/.test(s) || n > 65535) {
      ctx.addIssue({
        code: "custom",
        message: `must be a port number 0-65535 or "off", got "${s}"`,
      });
      return z.NEVER;
    }
    return n;
  }),
  TWINMILL_MQTT_HOST: host,
  TWINMILL_MQTT_AUTH: onOff.optional(),
  TWINMILL_MQTT_URL: url.optional(),
  NATS_URL: z.string().optional(),
  TWINMILL_STARTUP_TIMEOUT: z.string().default("300").transform((s, ctx) => {
    const n = Number(s);
    if (!/^\d+$/.test(s) || n > MAX_STARTUP_TIMEOUT_S) {
      ctx.addIssue({
        code: "custom",
        message: `must be whole seconds 0-${MAX_STARTUP_TIMEOUT_S} (0 = wait forever), got "${s}"`,
      });
      return z.NEVER;
    }
    return n;
  }),
  TWINMILL_NODE_ID: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "must be 1-64 of A-Z a-z 0-9 _ . -")
    .optional(),
  TWINMILL_SHARDS: int(64, 1, 4096),
  TWINMILL_DATA_DIR: z.string().min(1).default("./data"),
  INFLUX_URL: url.optional(),
  INFLUX_API: z.enum(["v1", "v2"], { message: 'must be "v1" or "v2"' }).default("v2"),
  INFLUX_TOKEN: z.string().optional(),
  INFLUX_ORG: z.string().optional(),
  INFLUX_BUCKET: z.string().optional(),
  INFLUX_DB: z.string().min(1).default("twinmill"),
  TWINMILL_API_KEYS: z.string().optional(),
  TWINMILL_JWT_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
  TWINMILL_JWT_PUBLIC_KEY_FILE: z.string().optional(),
  TWINMILL_JWT_JWKS_FILE: z.string().optional(),
  TWINMILL_JWT_ISSUER: z.string().optional(),
  TWINMILL_JWT_AUDIENCE: z.string().optional(),
  TWINMILL_JWT_CLOCK_TOLERANCE: int(0, 0, 300),
  TWINMILL_HTTP_RATE: int(200, 1, 1_000_000),
  TWINMILL_TLS_CERT: z.string().optional(),
  TWINMILL_TLS_KEY: z.string().optional(),
  TWINMILL_TLS_CA: z.string().optional(),
  TWINMILL_TLS_REVOKED: z.string().optional(),
  TWINMILL_MQTTS_PORT: int(8883, 0, 65535),
  TWINMILL_DEVICE_RATE: int(0, 0, 1_000_000),
  TWINMILL_MAX_CONNECTIONS: int(10_000, 1, 1_000_000),
  TWINMILL_LOG: z.string().default("info").superRefine((v, ctx) => {
    try {
      parseLogSpec(v);
    } catch (err) {
      ctx.addIssue({
        code: "custom",
        message: `${(err as Error).message} (e.g. info or info,mqtt=debug,cluster=warn)`,
      });
    }
  }),
  TWINMILL_IDLE_SECONDS: int(600, 1, 86_400 * 30),
  TWINMILL_MAX_PENDING: int(100_000, 100, 10_000_000),
  TWINMILL_CAMPAIGN_TICK_MS: int(1000, 10, 3_600_000),
  TWINMILL_FIRMWARE_MAX_BYTES: int(256 * 1024 * 1024, 1, 16 * 1024 ** 3),
  TWINMILL_FIRMWARE_STORE_MAX_BYTES: int(4 * 1024 ** 3, 1, 1024 ** 5),
  TWINMILL_FIRMWARE_KEYS: z.string().optional(),
  TWINMILL_FIRMWARE_REQUIRE_SIGNED: z.enum(["true", "false"], {
    message: 'must be "true" or "false"',
  }).default("false"),
  // the JSON intake and the twin size (README: Security); recursive code after the intake
  // (merge patch, delta) relies on the depth bound, hence its ceiling
  TWINMILL_JSON_MAX_DEPTH: int(DEFAULT_JSON_LIMITS.maxDepth, 1, 256),
  TWINMILL_JSON_MAX_KEYS: int(DEFAULT_JSON_LIMITS.maxKeys, 1, 1_000_000),
  TWINMILL_JSON_MAX_STRING: int(DEFAULT_JSON_LIMITS.maxString, 1, 16 * 1024 * 1024),
  TWINMILL_JSON_MAX_ARRAY: int(DEFAULT_JSON_LIMITS.maxArray, 1, 10_000_000),
  TWINMILL_TWIN_MAX_BYTES: int(DEFAULT_TWIN_MAX_BYTES, 1024, 64 * 1024 * 1024),
});

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
  mqtt: { port: number | null; host: string; auth: boolean; bridgeUrl?: string };
  natsUrl?: string;
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
    token?: string;
    org?: string;
    bucket?: string;
    db: string;
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
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

/** True for a loopback bind address. */
export function isLoopback(h: string): boolean {
  return LOOPBACK.has(h) || h.startsWith("127.");
}

/**
 * `key:role` or `key:role:site` entries, comma separated. Keys are at least 16 characters of
 * `A-Z a-z 0-9 _ - .`; the error never repeats a key.
 */
function parseApiKeys(v: string | undefined): Map<string, { role: Role; site?: string }> {
  const out = new Map<string, { role: Role; site?: string }>();
  if (!v) return out;
  for (const [i, raw] of v.split(",").entries()) {
    const entry = raw.trim();
    if (!entry) continue;
    const [key, role, site, ...rest] = entry.split(":");
    const where = `entry ${i + 1}`;
    if (!/^[A-Za-z0-9_.-]{16,}$/.test(key ?? "")) {
      throw new ConfigError(
        "TWINMILL_API_KEYS",
        `${where}: a key must be at least 16 of A-Z a-z 0-9 _ - .`,
      );
    }
    if (!(ROLES as readonly string[]).includes(role ?? "")) {
      throw new ConfigError(
        "TWINMILL_API_KEYS",
        `${where}: role must be viewer, operator or admin`,
      );
    }
    if (rest.length > 0 || site === "") {
      throw new ConfigError("TWINMILL_API_KEYS", `${where}: use key:role or key:role:site`);
    }
    if (out.has(key)) throw new ConfigError("TWINMILL_API_KEYS", `${where}: key given twice`);
    out.set(key, site === undefined ? { role: role as Role } : { role: role as Role, site });
  }
  return out;
}

/**
 * `TWINMILL_FIRMWARE_KEYS`: comma-separated PEM files, each an Ed25519 public key; a key's name
 * is its file's base name, so names must differ.
 */
function firmwareKeys(v: string | undefined): string[] {
  const files = (v ?? "").split(",").map((f) => f.trim()).filter(Boolean);
  const names = new Set<string>();
  for (const file of files) {
    let text: string;
    try {
      text = Deno.readTextFileSync(file);
    } catch {
      throw new ConfigError("TWINMILL_FIRMWARE_KEYS", `cannot read file "${file}"`);
    }
    let type: string | undefined;
    try {
      // a private key would parse too: only the public half belongs on the node
      if (text.includes("-----BEGIN PUBLIC KEY-----")) {
        type = createPublicKey(text).asymmetricKeyType;
      }
    } catch {
      type = undefined;
    }
    if (type !== "ed25519") {
      throw new ConfigError(
        "TWINMILL_FIRMWARE_KEYS",
        `"${file}" is not an Ed25519 public key in PEM (openssl pkey -pubout)`,
      );
    }
    const name = basename(file, extname(file));
    if (names.has(name)) {
      throw new ConfigError("TWINMILL_FIRMWARE_KEYS", `two key files are named "${name}"`);
    }
    names.add(name);
  }
  return files;
}

/** Parse and check the environment. Throws {@linkcode ConfigError}. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const clean = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ""),
  );
  const r = schema.safeParse(clean);
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
        throw new ConfigError("NATS_URL", `"${u}" is not a NATS server URL (nats://host:port)`);
      }
    }
  }
  if (e.TWINMILL_MQTT_URL) {
    throw new ConfigError(
      "TWINMILL_MQTT_URL",
      "bridging an external broker is not available in this version",
    );
  }
  if (e.TWINMILL_FIRMWARE_REQUIRE_SIGNED === "true" && !e.TWINMILL_FIRMWARE_KEYS) {
    throw new ConfigError(
      "TWINMILL_FIRMWARE_REQUIRE_SIGNED",
      "needs the public keys to verify with (TWINMILL_FIRMWARE_KEYS)",
    );
  }
  if (e.INFLUX_URL && e.INFLUX_API === "v2" && !e.INFLUX_BUCKET) {
    throw new ConfigError("INFLUX_BUCKET", "required when INFLUX_API=v2");
  }
  return {
    http: {
      port: e.TWINMILL_HTTP_PORT,
      host: e.TWINMILL_HTTP_HOST,
      headerTimeoutMs: e.TWINMILL_HTTP_HEADER_TIMEOUT * 1000,
      idleTimeoutMs: e.TWINMILL_HTTP_IDLE_TIMEOUT * 1000,
      maxConnections: e.TWINMILL_HTTP_MAX_CONNECTIONS,
    },
    mqtt: { port: e.TWINMILL_MQTT_PORT, host: e.TWINMILL_MQTT_HOST, auth: mqttAuth },
    natsUrl: e.NATS_URL,
    startupTimeoutMs: e.TWINMILL_STARTUP_TIMEOUT * 1000,
    nodeId: e.TWINMILL_NODE_ID ?? `${hostname()}-${Deno.pid}`.replace(/[^A-Za-z0-9_.-]/g, "_"),
    shards: e.TWINMILL_SHARDS,
    dataDir: e.TWINMILL_DATA_DIR,
    influx: e.INFLUX_URL
      ? {
        url: e.INFLUX_URL.replace(/\/+$/, ""),
        api: e.INFLUX_API,
        token: e.INFLUX_TOKEN,
        org: e.INFLUX_ORG,
        bucket: e.INFLUX_BUCKET,
        db: e.INFLUX_DB,
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
  };
}
