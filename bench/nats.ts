/**
 * A plain `nats-server` (core NATS, no JetStream, no cluster) for the fan-out baseline,
 * started here rather than with the test harness so that its pid is known (CPU readings)
 * and it is registered for cleanup.
 * @module
 */
import { canConnect, findBinary, freePort, waitFor } from "../tests/harness/mod.ts";
import { readAll, spawn } from "./proc.ts";

/** A running nats-server. */
export interface BenchNats {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** Starts `nats-server -a 127.0.0.1 -p <free port>`; resolves once it accepts connections. */
export async function startBenchNats(): Promise<BenchNats> {
  const port = await freePort();
  const p = spawn(findBinary("nats-server", "nats-server"), [
    "-a",
    "127.0.0.1",
    "-p",
    String(port),
  ]);
  let exited = false;
  const errors = readAll(p.child.stderr);
  void p.status.then(() => exited = true);
  try {
    await waitFor(async () => {
      if (exited) throw new Error(`nats-server exited: ${await errors}`);
      return canConnect(port);
    }, { timeoutMs: 10_000, message: `nats-server on port ${port}` });
  } catch (err) {
    await p.kill();
    throw err;
  }
  return { url: `nats://127.0.0.1:${port}`, pid: p.pid, stop: () => p.kill() };
}
