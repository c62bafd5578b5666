/**
 * The environment variables, one zod field each: defaults, ranges and formats. Checks that
 * involve several variables or files are in {@linkcode ./config.ts}.
 * @module
 */
import { z } from "zod";
import { parseLogSpec } from "../obs/log.ts";
import { DEFAULT_JSON_LIMITS } from "../../actors/json_intake.ts";
import { DEFAULT_TWIN_MAX_BYTES } from "../../actors/twin_size.ts";

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

/** The environment variables of the contract, each with its default and bounds. */
export const envSchema = z.object({
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
  TWINMILL_MQTT_RECEIVE_MAXIMUM: int(1000, 1, 65535),
  TWINMILL_MQTT_AUTH: onOff.optional(),
  TWINMILL_MQTT_URL: z.string().optional().superRefine((s, ctx) => {
    if (s === undefined) return;
    const u = URL.canParse(s) ? new URL(s) : null;
    if (!u || (u.protocol !== "mqtt:" && u.protocol !== "mqtts:") || !u.hostname) {
      ctx.addIssue({
        code: "custom",
        message: "must be mqtt://host[:port] or mqtts://host[:port]",
      });
    } else if (u.pathname.replace(/^\/$/, "") || u.search || u.hash) {
      ctx.addIssue({ code: "custom", message: "must have no path, query or fragment" });
    }
  }),
  TWINMILL_MQTT_USERNAME: z.string().optional(),
  TWINMILL_MQTT_PASSWORD: z.string().optional(),
  TWINMILL_MQTT_PASSWORD_FILE: z.string().optional(),
  TWINMILL_MQTT_CA: z.string().optional(),
  TWINMILL_MQTT_CERT: z.string().optional(),
  TWINMILL_MQTT_KEY: z.string().optional(),
  TWINMILL_MQTT_CLIENT_ID: z.string()
    .regex(/^[A-Za-z0-9_.:-]{1,128}$/, "must be 1-128 of A-Z a-z 0-9 _ . : -").optional(),
  TWINMILL_MQTT_SHARE: z.string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be a share name (1-64 of A-Z a-z 0-9 _ . -) or "off"')
    .optional(),
  TWINMILL_MQTT_SESSION_EXPIRY: int(86_400, 0, 0xffffffff),
  NATS_URL: z.string().optional(),
  // how the node authenticates to NATS and checks its TLS (src/config/nats_auth.ts)
  NATS_CREDS: z.string().optional(),
  NATS_NKEY: z.string().optional(),
  NATS_NKEY_FILE: z.string().optional(),
  NATS_USER: z.string().optional(),
  NATS_PASSWORD: z.string().optional(),
  NATS_PASSWORD_FILE: z.string().optional(),
  NATS_TOKEN: z.string().optional(),
  NATS_TOKEN_FILE: z.string().optional(),
  NATS_CA: z.string().optional(),
  NATS_CERT: z.string().optional(),
  NATS_KEY: z.string().optional(),
  TWINMILL_NATS_INSECURE: z.enum(["0", "1"], { message: 'must be "0" or "1"' }).optional(),
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
  INFLUX_TOKEN_FILE: z.string().optional(),
  INFLUX_CA: z.string().optional(),
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
  TWINMILL_DESIRED_EXPIRY: int(0, 0, 4_294_967_295),
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
  // the Sparkplug B host application (src/connectors/sparkplug/)
  TWINMILL_SPARKPLUG: onOff.default("on"),
  TWINMILL_SPARKPLUG_HOST_ID: z.string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, "must be 1-64 of A-Z a-z 0-9 _ . -").default("twinmill"),
  TWINMILL_SPARKPLUG_MAX_EDGE_NODES: int(10_000, 1, 1_000_000),
  TWINMILL_SPARKPLUG_MAX_DEVICES: int(1_000, 1, 100_000),
  TWINMILL_SPARKPLUG_MAX_METRICS: int(1_000, 1, 100_000),
});
