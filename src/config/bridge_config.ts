/**
 * The bridge from the plant's broker (`TWINMILL_MQTT_URL` and its companions): which broker,
 * how to log in, which session and which share group. Checked once at start-up: a bad URL, an
 * unreadable file or a missing companion is one {@linkcode ConfigError} line.
 * @module
 */
import { hostname } from "node:os";
import { ConfigError } from "./config_error.ts";

/** How the node connects to the plant's broker. */
export interface BridgeConfig {
  /** `mqtt://host[:port]` or `mqtts://host[:port]`, without user info (see `username`). */
  url: string;
  username?: string;
  /** Never logged. */
  password?: string;
  /** TLS (`mqtts://`): CA to verify the broker, client certificate and key (PEM files). */
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  /** The persistent session's client id: the same across restarts of this node. */
  clientId: string;
  /** Shared subscription group (`$share/{share}/…`); none: plain subscriptions. */
  share?: string;
  /** MQTT 5 session expiry (s): how long the broker keeps the session while the node is away. */
  sessionExpirySec: number;
}

/** The bridge's variables, as validated by the schema. */
export interface BridgeEnv {
  TWINMILL_MQTT_URL?: string;
  TWINMILL_MQTT_USERNAME?: string;
  TWINMILL_MQTT_PASSWORD?: string;
  TWINMILL_MQTT_PASSWORD_FILE?: string;
  TWINMILL_MQTT_CA?: string;
  TWINMILL_MQTT_CERT?: string;
  TWINMILL_MQTT_KEY?: string;
  TWINMILL_MQTT_CLIENT_ID?: string;
  TWINMILL_MQTT_SHARE?: string;
  TWINMILL_MQTT_SESSION_EXPIRY: number;
  TWINMILL_NODE_ID?: string;
  NATS_URL?: string;
}

const COMPANIONS = [
  "TWINMILL_MQTT_USERNAME",
  "TWINMILL_MQTT_PASSWORD",
  "TWINMILL_MQTT_PASSWORD_FILE",
  "TWINMILL_MQTT_CA",
  "TWINMILL_MQTT_CERT",
  "TWINMILL_MQTT_KEY",
  "TWINMILL_MQTT_CLIENT_ID",
  "TWINMILL_MQTT_SHARE",
] as const;

/** The bridge's configuration, or undefined without `TWINMILL_MQTT_URL`. Throws {@linkcode ConfigError}. */
export function bridgeConfig(e: BridgeEnv): BridgeConfig | undefined {
  if (e.TWINMILL_MQTT_URL === undefined) {
    const stray = COMPANIONS.find((k) => e[k] !== undefined);
    if (stray) throw new ConfigError(stray, "needs TWINMILL_MQTT_URL (the broker to bridge from)");
    return undefined;
  }
  const u = new URL(e.TWINMILL_MQTT_URL);
  const tls = u.protocol === "mqtts:";
  for (const k of ["TWINMILL_MQTT_CA", "TWINMILL_MQTT_CERT", "TWINMILL_MQTT_KEY"] as const) {
    if (e[k] !== undefined && !tls) throw new ConfigError(k, "needs an mqtts:// TWINMILL_MQTT_URL");
  }
  if ((e.TWINMILL_MQTT_CERT === undefined) !== (e.TWINMILL_MQTT_KEY === undefined)) {
    throw new ConfigError(
      e.TWINMILL_MQTT_CERT === undefined ? "TWINMILL_MQTT_CERT" : "TWINMILL_MQTT_KEY",
      "TWINMILL_MQTT_CERT and TWINMILL_MQTT_KEY go together",
    );
  }
  if (e.TWINMILL_MQTT_PASSWORD !== undefined && e.TWINMILL_MQTT_PASSWORD_FILE !== undefined) {
    throw new ConfigError(
      "TWINMILL_MQTT_PASSWORD",
      "set only one of TWINMILL_MQTT_PASSWORD, TWINMILL_MQTT_PASSWORD_FILE",
    );
  }
  for (
    const k of [
      "TWINMILL_MQTT_CA",
      "TWINMILL_MQTT_CERT",
      "TWINMILL_MQTT_KEY",
      "TWINMILL_MQTT_PASSWORD_FILE",
    ] as const
  ) {
    const file = e[k];
    if (file === undefined) continue;
    try {
      Deno.statSync(file);
    } catch {
      throw new ConfigError(k, `cannot read file "${file}"`);
    }
  }
  let password = e.TWINMILL_MQTT_PASSWORD;
  if (e.TWINMILL_MQTT_PASSWORD_FILE !== undefined) {
    try {
      password = Deno.readTextFileSync(e.TWINMILL_MQTT_PASSWORD_FILE).replace(/\r?\n$/, "");
    } catch {
      throw new ConfigError(
        "TWINMILL_MQTT_PASSWORD_FILE",
        `cannot read file "${e.TWINMILL_MQTT_PASSWORD_FILE}"`,
      );
    }
  }
  // user info in the URL is taken too, but never kept in the URL (it is logged)
  const username = e.TWINMILL_MQTT_USERNAME ??
    (u.username ? decodeURIComponent(u.username) : undefined);
  password ??= u.password ? decodeURIComponent(u.password) : undefined;
  const cluster = e.NATS_URL !== undefined;
  if (cluster && e.TWINMILL_MQTT_CLIENT_ID === undefined && e.TWINMILL_NODE_ID === undefined) {
    throw new ConfigError(
      "TWINMILL_MQTT_URL",
      "in cluster mode the bridge needs TWINMILL_NODE_ID (or TWINMILL_MQTT_CLIENT_ID) so that " +
        "a restarted node finds its session on the broker",
    );
  }
  const clientId = e.TWINMILL_MQTT_CLIENT_ID ??
    `twinmill-${e.TWINMILL_NODE_ID ?? hostname().replace(/[^A-Za-z0-9_.-]/g, "_")}`;
  const share = e.TWINMILL_MQTT_SHARE ?? (cluster ? "twinmill" : "off");
  return {
    url: `${u.protocol}//${u.host}`,
    username,
    password,
    caFile: e.TWINMILL_MQTT_CA,
    certFile: e.TWINMILL_MQTT_CERT,
    keyFile: e.TWINMILL_MQTT_KEY,
    clientId: clientId.slice(0, 128),
    share: share === "off" ? undefined : share,
    sessionExpirySec: e.TWINMILL_MQTT_SESSION_EXPIRY,
  };
}
