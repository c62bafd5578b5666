/**
 * twinmill node entry point: `deno task start`.
 * Invalid configuration prints one line naming the variable and exits with code 2.
 * SIGINT/SIGTERM stop gracefully: ingest stops, twins are persisted (cluster mode: every
 * shard is handed off to the other nodes), then exit 0.
 * @module
 */
import { ConfigError } from "./src/config/config_error.ts";
import { loadConfig } from "./src/config/config.ts";
import { createLogger } from "./src/obs/log.ts";
import { startNode } from "./src/node.ts";
import { isDiscardedSocketError } from "./src/transport/socket_errors.ts";

if (import.meta.main) {
  let cfg;
  try {
    cfg = loadConfig(Deno.env.toObject());
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`twinmill: ${err.message}`);
      Deno.exit(2);
    }
    throw err;
  }
  const log = createLogger(cfg.log);
  // Last resort: every failure of a request or a device message is contained where it happens
  // (the actor runtime, the effect executor, the persistence loop); a promise rejection that
  // still escapes is a bug, but it left no half-done state behind: log it and go on. A
  // synchronous exception nobody caught may have: log it and let the process end (exit 1).
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    log.error("unhandled promise rejection (a bug); the node goes on", { err: e.reason });
  });
  globalThis.addEventListener("error", (e) => {
    if (isDiscardedSocketError(e.error)) {
      // a socket nats.js had already let go of (src/transport/socket_errors.ts): nothing lost
      e.preventDefault();
      log.debug("error of a discarded socket ignored", { err: e.error });
      return;
    }
    log.error("uncaught exception (a bug); the node stops", { err: e.error ?? e.message });
  });
  let node;
  try {
    node = await startNode(cfg, log);
  } catch (err) {
    const e = err as Error & { code?: string };
    log.error("cannot start", { error: e.message, code: e.code });
    console.error(`twinmill: cannot start: ${e.message}`);
    Deno.exit(1);
  }
  log.info("ready", {
    pid: Deno.pid, // the process to signal: SIGTERM/SIGINT stop, SIGHUP reloads
    httpPort: node.httpPort,
    ...(node.mqttPort !== null ? { mqttPort: node.mqttPort } : {}),
    ...(node.mqttsPort !== null ? { mqttsPort: node.mqttsPort } : {}),
    http: `${cfg.tls ? "https" : "http"}://${cfg.http.host}:${node.httpPort}`,
    mqtt: node.mqttPort !== null ? `mqtt://${cfg.mqtt.host}:${node.mqttPort}` : null,
    dataDir: cfg.dataDir,
    // without user info: a password in INFLUX_URL is never logged
    influx: cfg.influx
      ? `${cfg.influx.url.replace(/\/\/[^/@]*@/, "//")} (${cfg.influx.api})`
      : null,
  });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await node.leave(); // cluster mode: hand off every shard first
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  // SIGHUP: new TLS certificate and revoked serials, no restart
  Deno.addSignalListener("SIGHUP", () => {
    node.reload().catch((err) => log.error("reload failed", { error: String(err) }));
  });
}
