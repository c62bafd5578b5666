/**
 * Compose a node: persistence, transport, twin host, ingest, embedded broker, InfluxDB writer
 * and the HTTP gateway. Without `NATS_URL` everything is local (Deno KV, in-process
 * transport); with it, the cluster parts take their place behind the same ports.
 * `main.ts` calls {@linkcode startNode}; tests may too.
 * @module
 */
import { join } from "node:path";
import type { Config } from "./config/config.ts";
import { createLogger, type Logger } from "./obs/log.ts";
import { createMetrics, type Metrics, monitorEventLoop } from "./obs/metrics.ts";
import { denoKvPersistence } from "./persistence/deno_kv.ts";
import { memoryTransport } from "./transport/memory.ts";
import { hostDefaults, type PointSink, TwinHost } from "./runtime/twin_host.ts";
import type { TwinService } from "./runtime/twin_service.ts";
import { Ingest, type IngestPort } from "./bridges/ingest.ts";
import { type Broker, startBroker } from "./connectors/mqtt/broker.ts";
import { InfluxWriter } from "./bridges/influx_writer.ts";
import type { Transport } from "./transport/port.ts";
import type { JsonObject } from "../actors/json.ts";
import { createApp } from "../routes/app.ts";
import { type ClusterParts, startCluster } from "./cluster/cluster_mode.ts";
import { clusterRoutes } from "../routes/cluster.ts";
import { profileRoutes } from "../routes/profiles.ts";
import { alarmRoutes } from "../routes/alarms.ts";
import { nodeProfiles, type Profiles } from "./rules/profiles.ts";
import { denoKvProfileStore } from "./rules/deno_kv_profile_store.ts";
import { WebhookSender } from "./rules/webhook.ts";
import { systemClock } from "./runtime/clock.ts";
import { DeviceAuth } from "./security/device_auth.ts";
import { denoKvCredentialStore } from "./security/credentials.ts";
import { credentialRoutes, revocationRoutes } from "../routes/credentials.ts";
import { auditAction, type AuthOptions, keyId, ticketRoutes, Tickets } from "../routes/auth.ts";
import { createJwtVerifier } from "./security/jwt.ts";
import { RateLimiter } from "./security/rate_limit.ts";
import { AuditLog } from "./security/audit.ts";
import { JetStreamAudit } from "./security/jetstream_audit.ts";
import { DenialGate, NODE_DENIAL_LIMIT } from "./security/audit_gate.ts";
import { auditRoutes } from "../routes/audit.ts";
import { commandRoutes } from "../routes/commands.ts";
import { diagnosticsRoutes } from "../routes/diagnostics.ts";
import { Diagnostics, type SessionReport } from "./mgmt/diagnostics.ts";
import { OpenAPIHono } from "@hono/zod-openapi";
import { denoKvDocStores, type DocStores, jetstreamDocStores } from "./persistence/doc_store.ts";
import { ConfigService, withConfigs } from "./mgmt/configs.ts";
import { configRoutes } from "../routes/configs.ts";
import { Provisioning } from "./mgmt/provisioning.ts";
import { provisioningKeyRoutes, provisionRoutes } from "../routes/provisioning.ts";
import { bulkRoutes } from "../routes/bulk.ts";
import { openFirmware } from "./mgmt/firmware.ts";
import { firmwareRoutes } from "../routes/firmware.ts";
import { CampaignStore } from "./mgmt/campaign_store.ts";
import { CampaignDriver } from "./mgmt/campaign_driver.ts";
import { CampaignService } from "./mgmt/campaign_service.ts";
import { campaignRoutes } from "../routes/campaigns.ts";
import { shardOf } from "./sharding/shard.ts";
import { type NotReady, type Readiness, startingRoutes } from "../routes/health.ts";
import { connectWhenUp, type Waiting } from "./cluster/startup.ts";
import { redact } from "./transport/nats.ts";
import { serveGateway } from "./http/server.ts";

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

/** The mode-specific part of a node. */
interface Core {
  host: TwinHost;
  twins: TwinService;
  profiles: Profiles;
  deviceAuth: DeviceAuth;
  transport: Transport;
  ingest: IngestPort;
  cluster?: ClusterParts;
  ready(): Readiness;
  republish(publish: (id: string, desired: JsonObject) => Promise<void>): Promise<number>;
  /** Stop taking messages and persist (single node) — cluster mode: close or leave. */
  close(graceful: boolean): Promise<void>;
}

const none = () => Promise.resolve([] as string[]);

async function singleCore(
  cfg: Config,
  log: Logger,
  metrics: Metrics,
  points: PointSink | undefined,
  downlink: (id: string, desired: JsonObject) => void,
  webhooks: WebhookSender,
  disconnect: (twin: string, credential: string) => void,
  broker: () => Broker | undefined,
): Promise<Core> {
  await Deno.mkdir(cfg.dataDir, { recursive: true });
  const credentialStore = await denoKvCredentialStore(join(cfg.dataDir, "credentials.kv"));
  const deviceAuth = new DeviceAuth({
    store: credentialStore,
    logger: log.child("credentials"),
    clock: systemClock,
    disconnect,
    disconnectCert: (serial) => void broker()?.disconnectCert(serial),
    revokedFile: cfg.tls?.revokedFile,
    caFile: cfg.tls?.caFile,
  });
  const persistence = await denoKvPersistence(join(cfg.dataDir, "twinmill.kv"));
  const profileStore = await denoKvProfileStore(join(cfg.dataDir, "profiles.kv"));
  const transport = memoryTransport();
  const profiles = nodeProfiles({
    store: profileStore,
    logger: log.child("profiles"),
    metrics,
    host: () => host,
  });
  const host = new TwinHost({
    ...hostDefaults(cfg, log, metrics, points),
    persistence,
    transport,
    downlink,
    profiles,
    webhooks,
    commands: { deliver: (twin, cmds) => broker()?.deliverCommands(twin, cmds) ?? none() },
  });
  metrics.profilesLoaded.set(await profiles.load());
  const replayed = await host.replay();
  if (replayed > 0) log.info("replayed unretired inbound messages", { count: replayed });
  const armed = await host.armStored();
  if (armed > 0) log.info("armed rule timers of stored twins", { twins: armed });
  const ingest = new Ingest({
    log: persistence.log,
    firstSeq: (await persistence.log.lastSeq()) + 1,
    onDurable: (batch) => host.dispatch(batch),
    canAccept: () => host.canAccept(),
    logger: log.child("ingest"),
    metrics,
  });
  return {
    host,
    twins: host,
    profiles,
    deviceAuth,
    transport,
    ingest,
    ready: () => true,
    async republish(publish) {
      let n = 0;
      for await (const s of host.withDesired()) {
        await publish(s.id, s.desired);
        n++;
      }
      return n;
    },
    async close() {
      await ingest.close();
      await host.close();
      await transport[Symbol.asyncDispose]();
      await persistence[Symbol.asyncDispose]();
      await profileStore[Symbol.asyncDispose]();
      await credentialStore[Symbol.asyncDispose]();
    },
  };
}

async function clusterCore(
  cfg: Config,
  log: Logger,
  metrics: Metrics,
  points: PointSink | undefined,
  webhooks: WebhookSender,
  disconnect: (twin: string, credential: string) => void,
  broker: () => Broker | undefined,
  onWaiting: (w: Waiting) => void,
): Promise<Core> {
  // NATS may not be there yet (started after the node, a JetStream cluster electing its
  // leader): wait for it, up to TWINMILL_STARTUP_TIMEOUT
  const transport = await connectWhenUp({
    servers: cfg.natsUrl!,
    name: cfg.nodeId,
    replicas: Math.min(3, Math.max(1, cfg.natsUrl!.split(",").length)),
    timeoutMs: cfg.startupTimeoutMs,
    logger: log,
    onWaiting,
  });
  const cluster = await startCluster(cfg, { http: "", mqtt: null }, points, log, metrics, {
    webhooks,
    disconnect,
    disconnectCert: (serial) => void broker()?.disconnectCert(serial),
    transport,
  });
  const at = cfg.natsUrl!.split(",").map((u) => redact(u.trim())).join(",");
  return {
    host: cluster.host,
    twins: cluster.twins,
    profiles: cluster.profiles,
    deviceAuth: cluster.deviceAuth,
    transport: cluster.transport,
    ingest: cluster.ingest,
    cluster,
    ready: () =>
      !cluster.connected
        ? {
          message: `NATS connection lost: reconnecting to ${at}`,
          waitingFor: { what: "NATS", at },
        }
        : cluster.coordinator.settled ||
          { message: "Shards are moving: not all shards of this node are served yet" },
    republish: (publish) => cluster.republishDesired(publish),
    close: (graceful) => graceful ? cluster.leave() : cluster.close(),
  };
}

/** Start a complete node from a validated configuration. */
export async function startNode(
  cfg: Config,
  logger = createLogger(cfg.log),
): Promise<TwinmillNode> {
  const log = logger;
  const metrics = createMetrics();
  let influx: InfluxWriter | undefined;
  if (cfg.influx) {
    influx = new InfluxWriter({
      ...cfg.influx,
      maxBuffer: Math.max(1000, Math.floor(cfg.maxPending / 2)),
      logger: log.child("influx"),
      metrics,
    });
  }
  let broker: Broker | undefined;
  // contained: a downlink that fails (or cannot be serialized) is logged, never an unhandled
  // rejection that ends the process
  const downlink = (id: string, desired: JsonObject) =>
    void broker?.publishDesired(id, desired).catch((err) => {
      metrics.effectFailures.inc({ type: "desired" });
      log.error("cannot publish desired state to device", { device: id, err });
    });
  const webhooks = new WebhookSender({
    logger: log.child("webhooks"),
    onOutcome: (o) => metrics.webhooks.inc({ outcome: o.kind }),
  });
  const disconnect = (twin: string, credential: string) =>
    void broker?.disconnect(twin, credential);

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

  let core: Core;
  try {
    core = cfg.natsUrl
      ? await clusterCore(cfg, log, metrics, influx, webhooks, disconnect, () => broker, (w) => {
        starting = { message: `Waiting for ${w.what} at ${w.at}: ${w.reason}`, waitingFor: w };
      })
      : await singleCore(cfg, log, metrics, influx, downlink, webhooks, disconnect, () => broker);
  } catch (err) {
    await server.shutdown();
    await webhooks.close();
    await influx?.close(1000);
    throw err;
  }
  starting = { message: "Node is starting" };
  // the audit log: a file under the data dir; in cluster mode a JetStream stream all nodes read
  await Deno.mkdir(cfg.dataDir, { recursive: true });
  const audit: AuditLog | JetStreamAudit = core.cluster
    ? await JetStreamAudit.open(core.cluster.nc, {
      nodeId: cfg.nodeId,
      replicas: core.cluster.replicas,
    })
    : await AuditLog.open(cfg.dataDir);
  // refusals can come from anyone: their entries are bounded so they cannot flush the history
  audit.gate = new DenialGate({
    ...NODE_DENIAL_LIMIT,
    onSuppressed: () => metrics.auditSuppressed.inc(),
    onSummary: (entries, since) =>
      log.warn(`audit entries of refusals left out (over ${NODE_DENIAL_LIMIT.perSecond}/s)`, {
        entries,
        since: new Date(since).toISOString(),
      }),
  });
  // small documents of device management (configs, provisioning keys, firmware, campaigns)
  const docs: DocStores = core.cluster
    ? jetstreamDocStores(core.cluster.nc, { replicas: core.cluster.replicas })
    : await denoKvDocStores(join(cfg.dataDir, "docs.kv"));
  // the twins as the gateway and device management see them (remote configuration wraps
  // `putAttributes`, so a newly provisioned twin gets the configs that target it)
  const configs = await ConfigService.open(docs, core.twins, log.child("configs"));
  const twins: TwinService = withConfigs(core.twins, configs);
  // zero-touch provisioning: keys in `docs`, over MQTT ($provision) and POST /v1/provision
  const provisioning = await Provisioning.open({
    docs,
    twins,
    credentials: core.deviceAuth,
    audit,
    logger: log.child("provisioning"),
  });
  // firmware images: metadata in `docs`, bytes under the data dir or in a JetStream object store
  const firmware = await openFirmware({
    ...cfg.firmware,
    docs,
    dataDir: cfg.dataDir,
    nc: core.cluster?.nc,
    replicas: core.cluster?.replicas,
    logger: log.child("firmware"),
  });
  // FOTA campaigns: each driven by the node owning the shard of its id (a single node: all)
  const campaignStore = await CampaignStore.open(docs);
  const cluster = core.cluster;
  const campaignDriver = new CampaignDriver({
    store: campaignStore,
    twins,
    firmware,
    transport: core.transport,
    logger: log.child("campaigns"),
    clock: systemClock,
    tickMs: cfg.campaignTickMs,
    owns: cluster ? (id) => cluster.coordinator.owns(shardOf(id, cfg.shards)) : undefined,
  });
  const campaigns = new CampaignService({
    store: campaignStore,
    firmware,
    transport: core.transport,
    clock: systemClock,
    logger: log.child("campaigns"),
    poke: (id) => campaignDriver.poke(id),
  });
  const revoked = await core.deviceAuth.loadRevoked();
  if (revoked > 0) log.info("revoked client certificates loaded", { serials: revoked });

  if (cfg.mqtt.port !== null) {
    broker = await startBroker({
      host: cfg.mqtt.host,
      port: cfg.mqtt.port,
      ingest: core.ingest,
      logger: log.child("mqtt"),
      metrics,
      auth: cfg.mqtt.auth ? core.deviceAuth : undefined,
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
      tls: cfg.tls
        ? {
          host: cfg.mqtt.host,
          port: cfg.tls.mqttsPort,
          certFile: cfg.tls.certFile,
          keyFile: cfg.tls.keyFile,
          clientCa: cfg.tls.caFile
            ? { file: cfg.tls.caFile, isRevoked: (s) => core.deviceAuth.isRevoked(s) }
            : undefined,
        }
        : undefined,
      limiter: cfg.deviceRate > 0 ? new RateLimiter({ rate: cfg.deviceRate }) : undefined,
      provisioning,
      onCommandsListening: (twin) =>
        void core.twins.commandsListening(twin).catch((err) =>
          log.warn("cannot deliver queued commands", { twin, err })
        ),
    });
    const b = broker;
    const n = await core.republish((id, d) => b.publishDesired(id, d));
    if (n > 0) log.info("republished retained desired state", { twins: n });
    core.cluster?.onDownlink(downlink);
    core.cluster?.onCommands((twin, cmds) => b.deliverCommands(twin, cmds));
  }

  const tickets = new Tickets();
  const httpLog = log.child("http");
  const auth: AuthOptions = {
    apiKeys: cfg.apiKeys,
    jwt: cfg.jwt
      ? await createJwtVerifier({
        secret: cfg.jwt.secret,
        publicKeyPem: cfg.jwt.publicKeyFile
          ? await Deno.readTextFile(cfg.jwt.publicKeyFile)
          : undefined,
        jwksPath: cfg.jwt.jwksFile,
        issuer: cfg.jwt.issuer,
        audience: cfg.jwt.audience,
        clockToleranceSec: cfg.jwt.clockToleranceSec,
      })
      : undefined,
    tickets,
    twins: core.twins,
    limiter: new RateLimiter({ rate: cfg.httpRate }),
    denied: (c, who, status, reason) => {
      metrics.authDenied.inc({ status: String(status) });
      audit.record({
        actor: who,
        action: status === 401
          ? "auth.failure"
          : status === 403
          ? "auth.forbidden"
          : "auth.rate_limited",
        target: `${c.req.method} ${c.req.path.slice(0, 200)}`,
        result: "denied",
        requestId: c.res.headers.get("x-request-id") ?? undefined,
        detail: { reason: reason.slice(0, 200) },
      });
      if (status === 429) metrics.rateLimited.inc({ what: "http_request" });
      httpLog.warn("request refused", {
        status,
        reason,
        principal: who,
        method: c.req.method,
        path: c.req.path.slice(0, 200),
      });
    },
  };
  if (cfg.apiKeys.size > 0) {
    log.info("API keys loaded", {
      keys: [...cfg.apiKeys].map(([k, v]) => ({ id: keyId(k), role: v.role, site: v.site })),
    });
  }

  // what this node's broker knows of a device (diagnostics)
  const sessionHere = (twin: string): SessionReport => ({
    node: cfg.nodeId,
    connection: broker?.connection(twin) ?? null,
    rejections: broker?.rejections(twin) ?? [],
  });
  core.cluster?.onSessions(sessionHere);
  const diagnostics = new Diagnostics({
    twins: core.twins,
    sessions: core.cluster
      ? (twin) => core.cluster!.sessions(twin)
      : (twin) => Promise.resolve([sessionHere(twin)]),
    influx,
  });

  // the routes under /v1/twins/{id}/ beyond the twin itself
  const twinExtras = new OpenAPIHono();
  twinExtras.route("/", credentialRoutes(core.deviceAuth, core.twins));
  twinExtras.route("/", commandRoutes(core.twins, core.transport));
  twinExtras.route("/", diagnosticsRoutes(diagnostics));

  let stopping = false;
  const app = createApp({
    auth,
    audit: (c, p, status) =>
      audit.record({
        actor: p?.id ?? "anonymous",
        role: p?.role,
        action: auditAction(c.req.method, c.req.path),
        target: c.req.path.slice(0, 200),
        result: status < 400 ? "ok" : "failed",
        requestId: c.res.headers.get("x-request-id") ?? undefined,
        detail: { status },
      }),
    host: twins,
    transport: core.transport,
    metrics,
    logger: log.child("http"),
    jsonLimits: cfg.limits.json,
    history: cfg.influx
      ? {
        url: cfg.influx.url,
        api: cfg.influx.api,
        db: cfg.influx.api === "v1" ? cfg.influx.db : cfg.influx.bucket!,
        token: cfg.influx.token,
      }
      : undefined,
    ready: () => !stopping && core.ready(),
    extra: {
      "/v1/twins": twinExtras,
      "/v1/stream": ticketRoutes(tickets),
      "/v1/revocations": revocationRoutes(core.deviceAuth),
      "/v1/audit": auditRoutes(audit),
      "/v1/profiles": profileRoutes(core.profiles),
      "/v1/alarms": alarmRoutes(core.twins),
      // device management
      "/v1/configs": configRoutes(configs),
      "/v1/provisioning-keys": provisioningKeyRoutes(provisioning),
      "/v1/provision": provisionRoutes(provisioning),
      "/v1/firmware": firmwareRoutes({
        firmware,
        deviceAuth: core.deviceAuth,
        registry: metrics.registry,
        denied: (c, who, reason) => auth.denied?.(c, who, 401, reason),
      }),
      "/v1/campaigns": campaignRoutes(campaigns, twins),
      // POST /v1/twins:bulk (the route's own path: see routes/bulk.ts)
      "/v1": bulkRoutes({
        twins,
        credentials: core.deviceAuth,
        audit,
        logger: log.child("bulk"),
      }),
      ...(core.cluster ? { "/v1/cluster": clusterRoutes(core.cluster) } : {}),
    },
  });
  handler = app.fetch;
  await core.cluster?.members.announce({
    http: httpUrl,
    mqtt: broker ? `mqtt://${cfg.mqtt.host}:${broker.port}` : null,
  });

  metrics.sources.devicesConnected = () => broker?.devicesConnected ?? 0;
  metrics.sources.mailboxDepth = () => core.host.mailboxDepth;
  metrics.sources.campaignsByState = () => campaignDriver.campaignCounts();
  metrics.sources.campaignDevicesByState = () => campaignDriver.deviceCounts();
  const stopLagMonitor = monitorEventLoop(metrics);
  campaignDriver.start();

  const stop = async (graceful: boolean) => {
    if (stopping) return;
    stopping = true;
    stopLagMonitor();
    log.info(graceful && core.cluster ? "leaving the cluster" : "shutting down");
    await campaignDriver[Symbol.asyncDispose]();
    await broker?.[Symbol.asyncDispose]();
    await audit.close();
    await core.close(graceful);
    await docs[Symbol.asyncDispose]();
    await webhooks.close();
    await influx?.close(5000);
    await server.shutdown();
    log.info("stopped");
  };
  return {
    httpPort,
    mqttPort: broker?.port ?? null,
    mqttsPort: broker?.tlsPort ?? null,
    async reload() {
      await broker?.reloadTls();
      await server.reload();
      const n = await core.deviceAuth.loadRevoked();
      log.info("reloaded TLS certificates and revoked serials", { revoked: n });
    },
    host: core.host,
    metrics,
    logger: log,
    leave: () => stop(true),
    app,
    [Symbol.asyncDispose]: () => stop(false),
  };
}
