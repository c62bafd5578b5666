import { findBinary } from "./binaries.ts";
import { freePorts } from "./free_port.ts";
import { httpText, makeTempDir, removeDir, retryOnExit, ServerProcess } from "./process.ts";

/** A running InfluxDB 1.x server on 127.0.0.1 that can be stopped and started again. */
export interface InfluxServer extends AsyncDisposable {
  /** HTTP port. */
  port: number;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** Kills the server (SIGKILL); data stays. A no-op when it is already stopped. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data; resolves when `/ping` answers 204. */
  start(): Promise<void>;
  /** POSTs `q` to `/query` (with `db` if given) and returns the parsed JSON body. */
  // deno-lint-ignore no-explicit-any
  query(q: string, db?: string): Promise<any>;
  /** POSTs line protocol to `/write?db=<db>&precision=<precision>` (default ns). */
  write(lines: string, db: string, precision?: string): Promise<void>;
}

/** Options of {@linkcode startInfluxd}. */
export interface StartInfluxdOptions {
  /**
   * Serve HTTPS with this certificate and key (PEM files); `ca` (PEM) is what the harness's
   * own requests trust. The server's `url` is then `https://127.0.0.1:<port>`.
   */
  tls?: { cert: string; key: string; ca: string };
}

function config(
  dir: string,
  httpPort: number,
  rpcPort: number,
  tls?: StartInfluxdOptions["tls"],
): string {
  return `reporting-disabled = true
bind-address = "127.0.0.1:${rpcPort}"

[meta]
  dir = "${dir}/meta"
  retention-autocreate = true
  logging-enabled = false

[data]
  dir = "${dir}/data"
  wal-dir = "${dir}/wal"
  wal-fsync-delay = "0s"
  index-version = "inmem"
  query-log-enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:${httpPort}"
  auth-enabled = false
  log-enabled = false
  pprof-enabled = false
${
    tls
      ? `  https-enabled = true
  https-certificate = "${tls.cert}"
  https-private-key = "${tls.key}"
`
      : ""
  }
[ifql]
  enabled = false

[logging]
  level = "warn"
  suppress-logo = true

[[graphite]]
  enabled = false

[[collectd]]
  enabled = false

[[opentsdb]]
  enabled = false

[[udp]]
  enabled = false
`;
}

/**
 * Starts InfluxDB 1.x (`influxd`) with a generated config in a temp dir (meta, data and
 * wal inside it; HTTP and RPC bound to free ports on 127.0.0.1; other services off) and
 * resolves once `GET /ping` answers 204.
 *
 * @example
 * ```ts
 * await using influx = await startInfluxd();
 * await influx.query("CREATE DATABASE twins");
 * await influx.stop(); // InfluxDB down for a while
 * await influx.start(); // back, same port and data
 * ```
 * With `opts.tls` it serves HTTPS (`url` is `https://…`).
 */
export function startInfluxd(opts: StartInfluxdOptions = {}): Promise<InfluxServer> {
  const bin = findBinary("influxd", "influxdb");
  return retryOnExit(async () => {
    const dir = await makeTempDir("influxd");
    try {
      const [port, rpcPort] = await freePorts(2);
      const conf = `${dir}/influxdb.conf`;
      await Deno.writeTextFile(conf, config(dir, port, rpcPort, opts.tls));
      const url = `${opts.tls ? "https" : "http"}://127.0.0.1:${port}`;
      // the harness's own requests trust the test CA
      const client = opts.tls
        ? Deno.createHttpClient({ caCerts: [await Deno.readTextFile(opts.tls.ca)] })
        : undefined;
      let proc: ServerProcess | undefined;

      const start = async () => {
        if (proc && !proc.exited) return;
        proc = ServerProcess.spawn({
          name: "influxd",
          cmd: bin,
          args: ["run", "-config", conf],
          env: { INFLUXDB_HTTP_BIND_ADDRESS: `127.0.0.1:${port}` },
        });
        await proc.waitReady(async () => {
          const res = await fetch(`${url}/ping`, { client });
          await res.body?.cancel();
          return res.status === 204;
        }, `GET /ping answers 204 on port ${port}`);
      };
      const stop = async () => {
        await proc?.stop("SIGKILL");
      };
      const dispose = async () => {
        await stop();
        client?.close();
        await removeDir(dir);
      };

      await start();
      return {
        port,
        url,
        start,
        stop,
        async query(q: string, db?: string) {
          const params = new URLSearchParams({ q });
          if (db !== undefined) params.set("db", db);
          return JSON.parse(
            await httpText(`${url}/query?${params}`, { method: "POST", client }),
          );
        },
        async write(lines: string, db: string, precision = "ns") {
          const params = new URLSearchParams({ db, precision });
          await httpText(`${url}/write?${params}`, { method: "POST", body: lines, client });
        },
        [Symbol.asyncDispose]: dispose,
      };
    } catch (err) {
      await removeDir(dir);
      throw err;
    }
  });
}
