import { findBinary } from "./binaries.ts";
import { canConnect, freePort } from "./free_port.ts";
import { makeTempDir, removeDir, retryOnExit, ServerProcess } from "./process.ts";

/** A running mosquitto broker on 127.0.0.1. */
export interface MosquittoServer extends AsyncDisposable {
  /** TCP port of the MQTT listener. */
  port: number;
  /** `mqtt://127.0.0.1:<port>` */
  url: string;
  /**
   * Stops the broker (SIGTERM: with persistence on, it saves its sessions and queues) and
   * starts it again on the same port with the same config and data; resolves once it accepts
   * connections. `whileDown` runs while it is stopped.
   */
  restart(whileDown?: () => Promise<void>): Promise<void>;
}

/** Options of {@linkcode startMosquitto}. */
export interface StartMosquittoOptions {
  /** Keep sessions and queued messages on disk (`persistence true`; saved on SIGTERM). */
  persistence?: boolean;
  /** More lines of mosquitto.conf (e.g. `max_queued_messages 100000`). */
  config?: string[];
}

/**
 * Starts mosquitto with a generated config (one listener on 127.0.0.1, anonymous
 * access, no persistence unless asked) and resolves once the port accepts TCP connections.
 *
 * @example
 * ```ts
 * await using broker = await startMosquitto();
 * const client = await mqtt.connectAsync(broker.url);
 * ```
 */
export function startMosquitto(opts: StartMosquittoOptions = {}): Promise<MosquittoServer> {
  const bin = findBinary("mosquitto", "mosquitto");
  return retryOnExit(async () => {
    const dir = await makeTempDir("mosquitto");
    try {
      // mosquitto started as root drops to user "mosquitto": it must be able to save its
      // persistence file here (else "Error: Permission denied" and sessions die with a restart)
      if (opts.persistence) await Deno.chmod(dir, 0o777);
      const port = await freePort();
      const conf = `${dir}/mosquitto.conf`;
      await Deno.writeTextFile(
        conf,
        [
          `listener ${port} 127.0.0.1`,
          "allow_anonymous true",
          opts.persistence ? `persistence true\npersistence_location ${dir}/` : "persistence false",
          "log_dest stderr",
          "log_type error",
          "log_type warning",
          "log_type notice",
          ...(opts.config ?? []),
          "",
        ].join("\n"),
      );
      const spawn = async () => {
        const p = ServerProcess.spawn({ name: "mosquitto", cmd: bin, args: ["-c", conf] });
        await p.waitReady(() => canConnect(port), `port ${port} accepts connections`);
        return p;
      };
      let proc = await spawn();
      return {
        port,
        url: `mqtt://127.0.0.1:${port}`,
        async restart(whileDown) {
          await proc.stop();
          await whileDown?.();
          proc = await spawn();
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

/**
 * Publishes one QoS 1 message to a node's MQTT listener on 127.0.0.1 with the
 * real `mosquitto_pub`, as a device would; `extra` options (client id, username
 * and password) go before the topic. Resolves with its exit code and output.
 *
 * @example
 * ```ts
 * const r = await publishQos1(node, "twins/press-7/telemetry", '{"temp":21.5}');
 * assert.equal(r.code, 0, r.stderr);
 * ```
 */
export function publishQos1(
  node: { mqttPort?: number },
  topic: string,
  message: string,
  extra: string[] = [],
): Promise<PubResult> {
  if (node.mqttPort === undefined) throw new Error("publishQos1: the node has no MQTT listener");
  const port = String(node.mqttPort);
  return mosquittoPub([
    "-h",
    "127.0.0.1",
    "-p",
    port,
    "-q",
    "1",
    ...extra,
    "-t",
    topic,
    "-m",
    message,
  ]);
}

/** Result of {@linkcode mosquittoPub}. */
export interface PubResult {
  /** Exit code of mosquitto_pub. */
  code: number;
  /** What it printed on stdout. */
  stdout: string;
  /** What it printed on stderr. */
  stderr: string;
}

/**
 * Runs the `mosquitto_pub` binary with `args`, writing `stdin` (if given) to it,
 * and resolves with its exit code and output.
 *
 * @example
 * ```ts
 * await mosquittoPub(["-p", String(broker.port), "-t", "devices/d1/telemetry", "-m", "{}"]);
 * ```
 */
export async function mosquittoPub(args: string[], stdin?: string): Promise<PubResult> {
  const bin = findBinary("mosquitto_pub", "mosquitto-clients");
  const child = new Deno.Command(bin, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    try {
      await writer.write(new TextEncoder().encode(stdin));
      await writer.close();
    } catch {
      // mosquitto_pub exited before reading all input; its exit code tells why
    }
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
