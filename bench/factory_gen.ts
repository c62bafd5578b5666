/**
 * The factory bench's load generators: `factory_gen.c` compiled with `cc`, started as
 * processes that speak a line protocol with the bench (see the C file: a ready line, the start
 * time on stdin, a result line, then stdin's end to disconnect).
 * @module
 */
import { readLines } from "../tests/harness/process.ts";
import type { HistogramJson } from "./histogram.ts";
import { log, spawn } from "./proc.ts";

/** Where one generator process connects, and its share of the devices. */
export interface GeneratorOptions {
  host: string;
  port: number;
  /** Index of this process's first device. */
  first: number;
  /** Devices in this process. */
  count: number;
  /** Devices over all generator processes (for the stagger). */
  total: number;
  /** Messages per device, one a second. */
  seconds: number;
  /** New connections per second (this process). */
  connectRate: number;
  /** Most time to wait for the last PUBACKs, ms. */
  drainMs: number;
}

/** A generator's first line: every device is connected (or has failed to). */
export interface Ready {
  ready: true;
  connected: number;
  /** Attempts that failed (a device has 3). */
  connectFailures: number;
  connectSecs: number;
}

/** A generator's last line. */
export interface GeneratorResult {
  devices: number;
  connected: number;
  connectFailures: number;
  /** Connections closed during the publishing phase. */
  dropped: number;
  sent: number;
  acked: number;
  /** PUBACKs for no message in flight, and packets of an unexpected type. */
  unexpected: number;
  /** Per device (index − `first`): messages sent and acknowledged. */
  sentPer: number[];
  ackedPer: number[];
  /** PUBACK latency, ms. */
  latency: HistogramJson;
  /** How late sends went out against their schedule, ms (the generator's own lag). */
  late: HistogramJson;
  /** Seconds from the start time to the last PUBACK (or the drain's end). */
  secs: number;
}

/** A generator process and its stdout, line by line. */
export interface Generator {
  p: ReturnType<typeof spawn>;
  next(): Promise<string>;
  /** Its last stderr lines. */
  errors: string[];
}

/** Compiles `factory_gen.c` into `dir`; returns the binary's path. */
export async function compileGenerator(dir: string): Promise<string> {
  const bin = `${dir}/factory_gen`;
  const src = new URL("./factory_gen.c", import.meta.url).pathname;
  const out = await new Deno.Command("cc", {
    args: ["-O2", "-o", bin, src, "-lm"],
    stdout: "piped",
    stderr: "piped",
  }).output().catch((err) => {
    throw new Error(`cannot run cc (apt-get install gcc): ${err}`);
  });
  if (!out.success) {
    throw new Error(`cc factory_gen.c failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return bin;
}

/** Starts generator `bin` with `o` (see `factory_gen.c` for the protocol). */
export function startGenerator(bin: string, o: GeneratorOptions, label: string): Generator {
  const args = [o.host, o.port, o.first, o.count, o.total, o.seconds, o.connectRate, o.drainMs];
  const p = spawn(bin, args.map(String), { stdin: "piped", stdout: "piped" });
  const errors: string[] = [];
  void readLines(p.child.stderr, (l) => {
    log(`factory: ${label}: ${l}`);
    errors.push(l);
    if (errors.length > 20) errors.shift();
  });
  const queue: string[] = [];
  let ended = false;
  let wake: (() => void) | undefined;
  void readLines(p.child.stdout, (l) => {
    queue.push(l);
    wake?.();
  }).then(() => {
    ended = true;
    wake?.();
  });
  return {
    p,
    errors,
    async next() {
      while (queue.length === 0) {
        if (ended) throw new Error(`factory generator (pid ${p.pid}) ended early`);
        await new Promise<void>((r) => wake = r);
      }
      return queue.shift()!;
    },
  };
}
