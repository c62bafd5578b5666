/**
 * Compose a node: persistence, transport, twin host, ingest, embedded broker, InfluxDB writer
 * and the HTTP gateway. `main.ts` calls {@linkcode startNode}; tests may too.
 * @module
 */
import { join } from "node:path";
import type { Config } from "./config/config.ts";
import { createLogger, type Logger } from "./obs/log.ts";
import { createMetrics, type Metrics } from "./obs/metrics.ts";
import { denoKvPersistence } from "./persistence/deno_kv.ts";
import { memoryTransport } from "./transport/memory.ts";
import { systemClock } from "./runtime/clock.ts";
import { TwinHost } from "./runtime/twin_host.ts";
import { Ingest } from "./bridges/ingest.ts";
import { type Broker, startBroker } from "./bridges/mqtt_broker.ts";
import { InfluxWriter } from "./bridges/influx_writer.ts";
import { createApp } from "../routes/app.ts";

/** A running node. */
export interface TwinmillNode extends AsyncDisposable {
  httpPort: number;
  mqttPort: number | null;
  host: TwinHost;
  metrics: Metrics;
  logger: Logger;
}

/** Start a complete single node from a validated configuration. */
export async function startNode(
  cfg: Config,
  logger = createLogger(cfg.log),
): Promise<TwinmillNode> {
  const log = logger;
  const metrics = createMetrics();
  await Deno.mkdir(cfg.dataDir, { recursive: true });
  const persistence = await denoKvPersistence(join(cfg.dataDir, "twinmill.kv"));
  const transport = memoryTransport();
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
  const host = new TwinHost({
    persistence,
    transport,
    clock: systemClock,
    logger: log.child("twins"),
    metrics,
    points: influx,
    idleMs: cfg.idleMs,
    maxPending: cfg.maxPending,
    downlink: (id, desired) => void broker?.publishDesired(id, desired),
  });

  const replayed = await host.replay();
  if (replayed > 0) log.info("replayed unretired inbound messages", { count: replayed });

  const ingest = new Ingest({
    log: persistence.log,
    firstSeq: (await persistence.log.lastSeq()) + 1,
    onDurable: (batch) => host.dispatch(batch),
    canAccept: () => host.canAccept(),
    logger: log.child("ingest"),
    metrics,
  });

  if (cfg.mqtt.port !== null) {
    broker = await startBroker({
      host: cfg.mqtt.host,
      port: cfg.mqtt.port,
      ingest,
      logger: log.child("mqtt"),
      metrics,
    });
    let n = 0;
    for await (const s of host.withDesired()) {
      await broker.publishDesired(s.id, s.desired);
      n++;
    }
    if (n > 0) log.info("republished retained desired state", { twins: n });
  }

  let ready = true;
  const app = createApp({
    host,
    transport,
    metrics,
    logger: log.child("http"),
    history: cfg.influx
      ? {
        url: cfg.influx.url,
        api: cfg.influx.api,
        db: cfg.influx.api === "v1" ? cfg.influx.db : cfg.influx.bucket!,
        token: cfg.influx.token,
      }
      : undefined,
    ready: () => ready,
  });
  const server = Deno.serve({
    hostname: cfg.http.host,
    port: cfg.http.port,
    onListen: () => {},
  }, app.fetch);

  const node: TwinmillNode = {
    httpPort: server.addr.port,
    mqttPort: broker?.port ?? null,
    host,
    metrics,
    logger: log,
    async [Symbol.asyncDispose]() {
      ready = false;
      log.info("shutting down");
      await broker?.[Symbol.asyncDispose]();
      await ingest.close();
      await host.close();
      await influx?.close(5000);
      await server.shutdown();
      await transport[Symbol.asyncDispose]();
      await persistence[Symbol.asyncDispose]();
      log.info("stopped");
    },
  };
  return node;
}
