/**
 * Integration-test harness: starts real servers (mosquitto, influxd, VictoriaMetrics,
 * nats-server) and twinmill nodes as subprocesses on free ports of 127.0.0.1. Every
 * server object implements `Symbol.asyncDispose` (kill, await exit, delete temp dir):
 *
 * @example
 * ```ts
 * import { startInfluxd, startMosquitto, startNode } from "../harness/mod.ts";
 *
 * Deno.test("telemetry reaches influx", async () => {
 *   await using influx = await startInfluxd();
 *   await using node = await startNode({ INFLUX_URL: influx.url });
 *   // ...
 * });
 * ```
 *
 * A missing binary throws `"<binary> not found: run tests/ensure_servers.sh (apt-get
 * install <pkg>)"`; tests never skip. `HARNESS_VERBOSE=1` copies all child output to stderr.
 *
 * @module
 */

export { findBinary } from "./binaries.ts";
export { canConnect, freePort, freePorts } from "./free_port.ts";
export { waitFor, type WaitForOptions, within } from "./wait_for.ts";
export { ProcessExitedError } from "./process.ts";
export {
  mosquittoPub,
  type MosquittoServer,
  publishQos1,
  type PubResult,
  startMosquitto,
  type StartMosquittoOptions,
} from "./mosquitto.ts";
export { type InfluxServer, startInfluxd } from "./influxd.ts";
export { influxCount, waitForInfluxCount } from "./influx_count.ts";
export { rss } from "./rss.ts";
export { startVictoriaMetrics, type VictoriaMetricsServer } from "./victoria_metrics.ts";
export {
  type NatsCluster,
  type NatsClusterMember,
  type NatsServer,
  type RouteSecurity,
  startNats,
  startNatsCluster,
  type StartNatsClusterOptions,
  type StartNatsOptions,
} from "./nats.ts";
export {
  type NodeProcess,
  REPO_ROOT,
  runNode,
  type RunResult,
  startNode,
  type StartNodeOptions,
} from "./node.ts";
export {
  connectDevice,
  type Device,
  getJson,
  type HasHttp,
  type HasMqtt,
  json,
  metric,
  metricBy,
  twinOrNull,
} from "./client.ts";
