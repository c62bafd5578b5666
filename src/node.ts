/**
 * Compose a node: a mode builds its parts (`src/modes/`: single node — Deno KV and the
 * in-process transport — or cluster mode over NATS/JetStream, both as one `NodeParts`), the
 * features add their services and routes (`src/features/`), the device connectors (the
 * embedded MQTT broker, the bridge from the plant's broker) meet the twins over the
 * transport, and the HTTP gateway serves it all. `main.ts` calls {@linkcode startNode}; tests
 * may too.
 * @module
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Config } from "./config/config.ts";
import { createLogger, type Logger } from "./obs/log.ts";
import { createMetrics, type Metrics, monitorEventLoop } from "./obs/metrics.ts";
import type { TwinHost } from "./runtime/twin_host.ts";
import { InfluxWriter } from "./bridges/influx_writer.ts";
import { WebhookSender } from "./rules/webhook.ts";
import type { Connector } from "./ports/connector.ts";
import { createApp } from "../routes/app.ts";
import { profileRoutes } from "../routes/profiles.ts";
import { alarmRoutes } from "../routes/alarms.ts";
import { connectorRoutes } from "../routes/connectors.ts";
import { commandRoutes } from "../routes/commands.ts";
import { type NotReady, startingRoutes } from "../routes/health.ts";
import { serveGateway } from "./http/server.ts";
import type { NodeParts } from "./modes/parts.ts";
import { startSingle } from "./modes/single.ts";
import { startCluster } from "./modes/cluster.ts";
import { republishDesired, serveConnectors } from "./modes/device_links.ts";
import type { FeatureContext } from "./features/feature.ts";
import { security } from "./features/security.ts";
import { management, remoteConfigs } from "./features/mgmt.ts";
import { diagnostics } from "./features/diagnostics.ts";
import { fleet } from "./features/fleet.ts";
import { bridgeConnector, mqttConnector } from "./features/mqtt.ts";
import { sparkplugHost } from "./features/sparkplug.ts";

/** A running node. */
export interface TwinmillNode extends AsyncDisposable {
  httpPort: number;
  mqttPort: number | null;
  /** MQTT over TLS port, when TLS is configured. */
  mqttsPort: number | null;
  /** Re-read TLS certificates and revoked certificate serials (SIGHUP). */
  reload(): Promise<void>;
  host: TwinHost;
  metrics: Metrics;
  logger: Logger;
  /** Cluster mode: hand off every shard, then stop (SIGTERM). Single node: same as dispose. */
  leave(): Promise<void>;
  /** The gateway as served (`app.routes`, `app.request(...)`: the OpenAPI coverage test). */
  app: OpenAPIHono;
}

/** Start a complete node from a validated configuration. */
export async function startNode(
  cfg: Config,
  logger = createLogger(cfg.log),
): Promise<TwinmillNode> {
  const log = logger;
  const metrics = createMetrics();
  // HTTPS to InfluxDB with a private CA (INFLUX_CA): the writer's and history's requests
  const influxClient = cfg.influx?.caFile
    ? Deno.createHttpClient({ caCerts: [await Deno.readTextFile(cfg.influx.caFile)] })
    : undefined;
  const influx = cfg.influx
    ? new InfluxWriter({
      ...cfg.influx,
      client: influxClient,
      maxBuffer: Math.max(1000, Math.floor(cfg.maxPending / 2)),
      logger: log.child("influx"),
      metrics,
    })
    : undefined;
  const webhooks = new WebhookSender({
    logger: log.child("webhooks"),
    onOutcome: (o) => metrics.webhooks.inc({ outcome: o.kind }),
  });
  // this node's device connectors, once started
  const connectors: Connector[] = [];

  // The gateway listens from the start: while the node starts (cluster mode: waits for NATS)
  // /healthz answers 200 and /readyz 503 saying what it waits for; the full gateway takes
  // over once every part is up. The MQTT listener opens only then: nothing is acknowledged
  // to a device before it can be made durable.
  let starting: NotReady = { message: "Node is starting" };
  let handler: (req: Request, info: Deno.ServeHandlerInfo) => Response | Promise<Response> =
    startingRoutes(metrics, () => starting).fetch;
  // Header and idle timeouts and a bound on open connections (src/http/conn_guard.ts). With
  // TLS, a reload starts a second server on the same port (SO_REUSEPORT) with the new
  // certificate, then drains the old one: no restart, no refused connection.
  const server = await serveGateway({
    hostname: cfg.http.host,
    port: cfg.http.port,
    tls: cfg.tls,
    limits: cfg.http,
    logger: log.child("http"),
    onClosed: (reason, n) => {
      metrics.httpConnectionsClosed.inc({ reason }, n);
      if (reason === "too_many_connections") {
        metrics.rateLimited.inc({ what: "http_connection" }, n);
      }
    },
  }, (req, info) => handler(req, info));
  const httpPort = server.port;
  const httpUrl = `${cfg.tls ? "https" : "http"}://${cfg.http.host}:${httpPort}`;
  log.info("http listening", { httpPort, http: httpUrl });

  let parts: NodeParts;
  try {
    parts = await (cfg.natsUrl ? startCluster : startSingle)({
      cfg,
      log,
      metrics,
      points: influx,
      webhooks,
      disconnect: (twin, credential) => connectors.forEach((c) => c.disconnect(twin, credential)),
      disconnectCert: (serial) => connectors.forEach((c) => c.disconnectCert(serial)),
      onWaiting: (w) => {
        starting = { message: `Waiting for ${w.what} at ${w.at}: ${w.reason}`, waitingFor: w };
      },
    });
  } catch (err) {
    await server.shutdown();
    await webhooks.close();
    await influx?.close(1000);
    throw err;
  }
  starting = { message: "Node is starting" };
  const { configs, twins } = await remoteConfigs({ log, parts });
  const ctx: FeatureContext = { cfg, log, metrics, parts, twins };
  const sec = await security(ctx);
  const mgmt = await management(
    ctx,
    configs,
    (c, who, reason) => sec.auth.denied?.(c, who, 401, reason),
  );
  const diag = diagnostics(ctx, influx);
  const fleetView = fleet(ctx);

  // devices: desired state, commands and session questions reach the connectors over the
  // transport, from this node's twins or another node's
  const sparkplug = sparkplugHost(ctx);
  const broker = await mqttConnector(ctx, mgmt.provisioning, sparkplug);
  if (broker) connectors.push(broker);
  const bridge = await bridgeConnector(ctx, sparkplug);
  if (bridge) connectors.push(bridge);
  if (sparkplug) connectors.push(sparkplug);
  const links = serveConnectors({
    transport: parts.transport,
    nodeId: cfg.nodeId,
    connectors,
    logger: log,
    metrics,
  });
  if (connectors.length > 0) {
    const n = await republishDesired(parts.host, connectors);
    if (n > 0) log.info("republished retained desired state", { twins: n });
  }

  // the routes under /v1/twins/{id}/ beyond the twin itself
  const twinExtras = new OpenAPIHono();
  for (
    const r of [
      ...sec.twinRoutes,
      commandRoutes(twins, parts.transport),
      ...diag.twinRoutes,
    ]
  ) twinExtras.route("/", r);

  let stopping = false;
  const app = createApp({
    auth: sec.auth,
    audit: sec.audited,
    host: twins,
    transport: parts.transport,
    metrics,
    logger: log.child("http"),
    jsonLimits: cfg.limits.json,
    history: cfg.influx
      ? {
        url: cfg.influx.url,
        api: cfg.influx.api,
        db: cfg.influx.api === "v1" ? cfg.influx.db : cfg.influx.bucket!,
        token: cfg.influx.token,
        client: influxClient,
      }
      : undefined,
    ready: () => !stopping && parts.ready(),
    extra: {
      "/v1/twins": twinExtras,
      ...sec.routes,
      "/v1/profiles": profileRoutes(parts.profiles),
      "/v1/alarms": alarmRoutes(twins),
      "/v1/connectors": connectorRoutes(() => connectors),
      ...mgmt.routes,
      ...fleetView.routes,
      ...parts.routes,
    },
  });
  handler = app.fetch;
  await parts.serving({
    http: httpUrl,
    mqtt: broker ? `mqtt://${cfg.mqtt.host}:${broker.port}` : null,
  });

  metrics.sources.devicesConnected = () => connectors.reduce((n, c) => n + c.devicesConnected, 0);
  metrics.sources.mailboxDepth = () => parts.host.mailboxDepth;
  const stopLagMonitor = monitorEventLoop(metrics);
  mgmt.start();

  const stop = async (graceful: boolean) => {
    if (stopping) return;
    stopping = true;
    stopLagMonitor();
    log.info(graceful ? parts.leaving : "shutting down");
    await mgmt[Symbol.asyncDispose]();
    for (const c of connectors) await c[Symbol.asyncDispose]();
    links[Symbol.dispose]();
    fleetView[Symbol.dispose]();
    await (graceful ? parts.leave() : parts.close());
    await webhooks.close();
    await influx?.close(5000);
    influxClient?.close();
    await server.shutdown();
    log.info("stopped");
  };
  return {
    httpPort,
    mqttPort: broker?.port ?? null,
    mqttsPort: broker?.tlsPort ?? null,
    async reload() {
      // first: it needs no network, and a node that cannot reconnect to NATS (whose revoked
      // serials below cannot be read then) may need exactly these files
      await parts.reload?.();
      for (const c of connectors) await c.reloadTls();
      await server.reload();
      const n = await parts.deviceAuth.loadRevoked();
      log.info("reloaded TLS certificates and revoked serials", { revoked: n });
    },
    host: parts.host,
    metrics,
    logger: log,
    leave: () => stop(true),
    app,
    [Symbol.asyncDispose]: () => stop(false),
  };
}
