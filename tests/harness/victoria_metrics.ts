import { findBinary } from "./binaries.ts";
import { freePort } from "./free_port.ts";
import { httpText, makeTempDir, removeDir, retryOnExit, ServerProcess } from "./process.ts";

/** A running single-node VictoriaMetrics on 127.0.0.1. */
export interface VictoriaMetricsServer extends AsyncDisposable {
  /** HTTP port. */
  port: number;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /**
   * `GET /internal/force_flush`: flushes buffered samples. A sample written just before
   * may still take about a second to become readable, so poll:
   * `await waitFor(async () => (await vm.flush(), (await vm.exportSeries(m)).trim()))`.
   */
  flush(): Promise<void>;
  /**
   * `GET /api/v1/query?query=<promql>`; returns the parsed JSON body. Fresh series may
   * show up a few hundred ms after {@linkcode exportSeries} sees them: poll.
   */
  // deno-lint-ignore no-explicit-any
  query(promql: string): Promise<any>;
  /** `GET /api/v1/export?match[]=<match>`; returns the JSON-lines body as text. */
  exportSeries(match: string): Promise<string>;
}

/**
 * Starts VictoriaMetrics (`-httpListenAddr=127.0.0.1:<port> -storageDataPath=<tmp>`)
 * and resolves once `/health` answers OK. Instant queries see fresh samples
 * (`-search.latencyOffset=0s`, cache off). It accepts InfluxDB line protocol at
 * `/write` and `/api/v2/write`: measurement `telemetry` with field `temp` becomes
 * metric `telemetry_temp`, tags become labels.
 *
 * @example
 * ```ts
 * await using vm = await startVictoriaMetrics();
 * await fetch(`${vm.url}/api/v2/write?org=x&bucket=y&precision=ms`, {
 *   method: "POST",
 *   body: `telemetry,device=d1 temp=21.5 ${Date.now()}`,
 * });
 * const lines = await waitFor(async () => {
 *   await vm.flush();
 *   return (await vm.exportSeries("telemetry_temp")).trim();
 * });
 * ```
 */
export function startVictoriaMetrics(): Promise<VictoriaMetricsServer> {
  const bin = findBinary(["victoria-metrics", "victoria-metrics-prod"], "victoria-metrics");
  return retryOnExit(async () => {
    const dir = await makeTempDir("victoria-metrics");
    try {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const proc = ServerProcess.spawn({
        name: "victoria-metrics",
        cmd: bin,
        args: [
          `-httpListenAddr=127.0.0.1:${port}`,
          `-storageDataPath=${dir}`,
          "-loggerLevel=WARN",
          "-search.latencyOffset=0s",
          "-search.disableCache",
        ],
      });
      await proc.waitReady(
        async () => (await httpText(`${url}/health`)).trim() === "OK",
        `/health answers OK on port ${port}`,
      );
      return {
        port,
        url,
        async flush() {
          await httpText(`${url}/internal/force_flush`);
        },
        async query(promql: string) {
          const params = new URLSearchParams({ query: promql });
          return JSON.parse(await httpText(`${url}/api/v1/query?${params}`));
        },
        exportSeries(match: string) {
          const params = new URLSearchParams({ "match[]": match });
          return httpText(`${url}/api/v1/export?${params}`);
        },
        async [Symbol.asyncDispose]() {
          await proc.stop();
          await removeDir(dir);
        },
      };
    } catch (err) {
      await removeDir(dir);
      throw err;
    }
  });
}
