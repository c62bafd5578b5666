/**
 * The MQTT.js client options of the bridge: a persistent session under a fixed client id
 * (`clean: false`; MQTT 5: a session expiry and a receive maximum), credentials and TLS files
 * from the configuration, and no automatic resubscription (the bridge subscribes itself when
 * the broker has no session for it).
 * @module
 */
import type { IClientOptions } from "mqtt";
import type { BridgeConfig } from "../../config/bridge_config.ts";

/**
 * QoS 1 messages the broker may have in flight to the bridge (MQTT 5 receive maximum), and the
 * most the bridge reads before their PUBACKs (mosquitto 2.0.11 sends past the maximum once
 * PUBACKs flow; 3.1.1 has none). Below the 128 keys a twin remembers (`RECENT_KEYS`): a message
 * the broker redelivers was among the last 100 read, so its twin still holds its key.
 */
export const RECEIVE_MAXIMUM = 100;
/**
 * Largest packet the bridge takes (MQTT 5): a broker drops bigger messages for this session.
 * Up to this size a payload over the device limit (64 KiB) is received, counted and rejected.
 */
export const MAX_PACKET_BYTES = 1024 * 1024;
/** First reconnect delay (ms); it doubles after each failed attempt up to the maximum. */
export const MIN_BACKOFF_MS = 500;
/** Longest reconnect delay (ms). */
export const MAX_BACKOFF_MS = 30_000;

/** The TLS files' contents (`mqtts://`). */
export interface TlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
}

/** Read the TLS files of `cfg` (start-up and SIGHUP). */
export async function readTlsFiles(cfg: BridgeConfig): Promise<TlsFiles> {
  const read = (f?: string) => f === undefined ? undefined : Deno.readTextFile(f);
  const [ca, cert, key] = await Promise.all([
    read(cfg.caFile),
    read(cfg.certFile),
    read(cfg.keyFile),
  ]);
  return { ca, cert, key };
}

/** The client options for protocol `version` (5, else 4 = MQTT 3.1.1). */
export function clientOptions(cfg: BridgeConfig, version: 4 | 5, tls: TlsFiles): IClientOptions {
  return {
    clientId: cfg.clientId,
    clean: false,
    protocolVersion: version,
    username: cfg.username,
    password: cfg.password,
    keepalive: 30,
    connectTimeout: 10_000,
    reconnectPeriod: MIN_BACKOFF_MS,
    reconnectOnConnackError: true,
    resubscribe: false,
    ...(version === 5
      ? {
        properties: {
          sessionExpiryInterval: cfg.sessionExpirySec,
          receiveMaximum: RECEIVE_MAXIMUM,
          maximumPacketSize: MAX_PACKET_BYTES,
        },
      }
      : {}),
    ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
    ...(tls.cert !== undefined ? { cert: tls.cert, key: tls.key } : {}),
    rejectUnauthorized: true,
  };
}
