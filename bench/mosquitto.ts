/**
 * mosquitto for the baseline, and the `mosquitto_pub` / `mosquitto_sub` clients.
 *
 * The broker is started here rather than with the test harness because the baseline needs
 * `max_queued_messages 0`: with the default (1000) mosquitto drops QoS 1 messages for a
 * subscriber that 30 publishers outpace, and the subscriber would never see them all.
 * @module
 */
import { canConnect, findBinary, freePort, waitFor } from "../tests/harness/mod.ts";
import { readLines } from "../tests/harness/process.ts";
import { type Child, readAll, spawn } from "./proc.ts";

/** A running baseline broker. */
export interface Mosquitto {
  port: number;
  pid: number;
  /** Resolves once the broker has logged a subscription by client `clientId`. */
  subscribed(clientId: string, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts mosquitto on 127.0.0.1 (no persistence, unlimited queues) on a free port. It logs
 * subscriptions, so that a subscriber can be known to be live before publishing starts.
 */
export async function startBaselineMosquitto(dir: string): Promise<Mosquitto> {
  const port = await freePort();
  const conf = `${dir}/mosquitto.conf`;
  await Deno.writeTextFile(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      "allow_anonymous true",
      "persistence false",
      "max_queued_messages 0",
      "max_connections -1",
      "log_dest stderr",
      "log_type error",
      "log_type subscribe",
      "",
    ].join("\n"),
  );
  const p = spawn(findBinary("mosquitto", "mosquitto"), ["-c", conf]);
  const lines: string[] = [];
  const reading = readLines(p.child.stderr!, (line) => lines.push(line));
  let exited = false;
  void p.status.then(() => exited = true);
  const check = (what: string) => {
    if (exited) throw new Error(`mosquitto exited before ${what}: ${lines.join("\n")}`);
  };
  try {
    await waitFor(() => (check(`listening on ${port}`), canConnect(port)), {
      timeoutMs: 10_000,
      message: `mosquitto on port ${port}`,
    });
  } catch (err) {
    await p.kill();
    throw err;
  }
  return {
    port,
    pid: p.pid,
    async subscribed(clientId, timeoutMs = 10_000) {
      const re = new RegExp(`^\\d+: ${clientId} \\d `);
      await waitFor(() => (check(`${clientId} subscribed`), lines.some((l) => re.test(l))), {
        timeoutMs,
        intervalMs: 5,
        message: `mosquitto: subscription of ${clientId}`,
      });
    },
    async stop() {
      await p.kill();
      await reading;
    },
  };
}

/** `mosquitto_pub -q 1 -l` options shared by the baseline and the node runs. */
export interface PubOptions {
  port: number;
  topic: string;
  /** File whose lines are the messages (one message per line). */
  input: string;
  /** `-M`: most QoS 1 messages in flight; mosquitto_pub's default (20) when absent. */
  maxInflight?: number;
  clientId: string;
}

/**
 * Starts `mosquitto_pub -q 1 -l` reading `input` from stdin (via `sh -c exec`, so the
 * process is mosquitto_pub itself). It exits 0 once every message is acknowledged.
 */
export function startPub(o: PubOptions): Child {
  const bin = findBinary("mosquitto_pub", "mosquitto-clients");
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const cmd = [
    "exec",
    q(bin),
    "-h 127.0.0.1",
    `-p ${o.port}`,
    "-q 1",
    "-l",
    ...(o.maxInflight === undefined ? [] : [`-M ${o.maxInflight}`]),
    `-i ${q(o.clientId)}`,
    `-t ${q(o.topic)}`,
    `< ${q(o.input)}`,
  ].join(" ");
  return spawn("sh", ["-c", cmd]);
}

/** Waits for a client to exit; throws with its stderr unless it exited 0. */
export async function exitedOk(p: Child, what: string): Promise<void> {
  const [status, err] = await Promise.all([p.status, readAll(p.child.stderr)]);
  if (status.code !== 0) {
    throw new Error(`${what} exited with code ${status.code}: ${err.trim()}`);
  }
}

/** Publishes one QoS 1 message and waits for the PUBACK. */
export async function publishOne(port: number, topic: string, payload: string): Promise<void> {
  const bin = findBinary("mosquitto_pub", "mosquitto-clients");
  const p = spawn(bin, [
    "-h",
    "127.0.0.1",
    "-p",
    String(port),
    "-q",
    "1",
    "-t",
    topic,
    "-m",
    payload,
  ]);
  await exitedOk(p, `mosquitto_pub ${topic}`);
}

/**
 * Starts `mosquitto_sub -q 1 -t <filter> -C <count>`: it exits 0 once it has received
 * `count` messages. Its output is discarded, so reading it costs the bench nothing.
 */
export function startCountingSub(
  port: number,
  filter: string,
  count: number,
  clientId: string,
): Child {
  const bin = findBinary("mosquitto_sub", "mosquitto-clients");
  const args = ["-h", "127.0.0.1", "-p", String(port), "-q", "1", "-t", filter];
  return spawn(bin, [...args, "-C", String(count), "-i", clientId]);
}
