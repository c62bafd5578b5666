/**
 * The embedded MQTT broker as this node's device connector: its listeners (plain, TLS,
 * mTLS), device authentication, rate limits, provisioning over MQTT, and refusals audited.
 * Started once every part is up: nothing is acknowledged to a device before it can be made
 * durable. The bridge from the plant's broker (`TWINMILL_MQTT_URL`) is another connector,
 * started beside it (or alone, with `TWINMILL_MQTT_PORT=off`).
 * @module
 */
import { type Broker, startBroker } from "../connectors/mqtt/broker.ts";
import { type Bridge, startBridge } from "../connectors/bridge/bridge.ts";
import type { SparkplugHostPort } from "../connectors/sparkplug/port.ts";
import { republishDesired } from "../modes/device_links.ts";
import { RateLimiter } from "../security/rate_limit.ts";
import type { Provisioning } from "../mgmt/provisioning.ts";
import type { FeatureContext } from "./feature.ts";

/** Start the embedded broker, unless `TWINMILL_MQTT_PORT=off`. */
export async function mqttConnector(
  { cfg, log, metrics, parts, twins }: FeatureContext,
  provisioning: Provisioning,
  sparkplug?: SparkplugHostPort,
): Promise<Broker | undefined> {
  if (cfg.mqtt.port === null) return undefined;
  const { deviceAuth, audit } = parts;
  return await startBroker({
    host: cfg.mqtt.host,
    port: cfg.mqtt.port,
    ingest: parts.ingest,
    logger: log.child("mqtt"),
    metrics,
    auth: cfg.mqtt.auth ? deviceAuth : undefined,
    onDenied: (e) =>
      audit.record({
        actor: `device:${e.device}`,
        action: e.action === "connect" ? "mqtt.auth_failure" : "mqtt.acl_denied",
        target: e.device,
        result: "denied",
        detail: { reason: e.reason, operation: e.action },
      }),
    maxConnections: cfg.maxConnections,
    jsonLimits: cfg.limits.json,
    desiredExpirySec: cfg.desiredExpirySec,
    receiveMaximum: cfg.mqtt.receiveMaximum,
    tls: cfg.tls
      ? {
        host: cfg.mqtt.host,
        port: cfg.tls.mqttsPort,
        certFile: cfg.tls.certFile,
        keyFile: cfg.tls.keyFile,
        clientCa: cfg.tls.caFile
          ? { file: cfg.tls.caFile, isRevoked: (s) => deviceAuth.isRevoked(s) }
          : undefined,
      }
      : undefined,
    limiter: cfg.deviceRate > 0 ? new RateLimiter({ rate: cfg.deviceRate }) : undefined,
    provisioning,
    sparkplug,
    onCommandsListening: (twin) =>
      void twins.commandsListening(twin).catch((err) =>
        log.warn("cannot deliver queued commands", { twin, err })
      ),
  });
}

/**
 * Start the bridge from the plant's broker when `TWINMILL_MQTT_URL` is set (it connects in the
 * background). `sparkplug`: the Sparkplug B host application, to take that broker's
 * `spBv1.0/#` too.
 */
export async function bridgeConnector(
  { cfg, log, metrics, parts, twins }: FeatureContext,
  sparkplug?: SparkplugHostPort,
): Promise<Bridge | undefined> {
  if (!cfg.mqtt.bridge) return undefined;
  const bridge: Bridge = await startBridge({
    config: cfg.mqtt.bridge,
    ingest: parts.ingest,
    logger: log.child("bridge"),
    metrics,
    jsonLimits: cfg.limits.json,
    desiredExpirySec: cfg.desiredExpirySec,
    owns: (id) => parts.placement.owns(id),
    republish: () => republishDesired(parts.host, [bridge]),
    onCommandsListening: (twin) =>
      void twins.commandsListening(twin).catch((err) =>
        log.warn("cannot deliver queued commands", { twin, err })
      ),
    sparkplug,
  });
  return bridge;
}
