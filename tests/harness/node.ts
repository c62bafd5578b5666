import { fileURLToPath } from "node:url";
import { forward, makeTempDir, readLines, removeDir, terminate, VERBOSE } from "./process.ts";

/** Root of the twinmill repository (two levels above this file). */
export const REPO_ROOT: string = fileURLToPath(new URL("../../", import.meta.url)).replace(
  /\/$/,
  "",
);

/** Path of the node's entry point. */
const MAIN = `${REPO_ROOT}/main.ts`;

/**
 * The `deno run` flags of deno.json's `start` task (`deno run <flags> main.ts`), so that a test
 * runs the node as users start it: its permissions, and its V8 flags (the young generation's
 * size, which bounds the memory tests measure).
 */
const START_FLAGS: string[] = (() => {
  const start = JSON.parse(Deno.readTextFileSync(`${REPO_ROOT}/deno.json`)).tasks.start;
  const m = /^deno run (.+) main\.ts$/.exec(String(start).trim());
  if (!m) throw new Error(`deno.json's start task is not "deno run <flags> main.ts": ${start}`);
  return m[1].split(/\s+/);
})();

/** How long {@linkcode startNode} waits for the `ready` log line. */
const READY_TIMEOUT_MS = 30_000;

/** How long {@linkcode runNode} lets the node run before killing it. */
const RUN_TIMEOUT_MS = 15_000;

/** A twinmill node running as a subprocess, ready to serve. */
export interface NodeProcess extends AsyncDisposable {
  /** `http://127.0.0.1:<httpPort>` */
  httpUrl: string;
  /** HTTP port the node bound (it is started with `TWINMILL_HTTP_PORT=0`). */
  httpPort: number;
  /** MQTT port the node bound; undefined when its MQTT listener is off. */
  mqttPort: number | undefined;
  /** `mqtt://127.0.0.1:<mqttPort>`; undefined when its MQTT listener is off. */
  mqttUrl: string | undefined;
  /** MQTT over TLS port (with `TWINMILL_TLS_CERT`); undefined otherwise. */
  mqttsPort: number | undefined;
  /** The node's `TWINMILL_DATA_DIR`. */
  dataDir: string;
  /** Process id. */
  pid: number;
  /** Every stderr line so far (JSON log records, one per line). */
  logs: string[];
  /** Every stdout line so far (the node should print nothing there). */
  stdout: string[];
  /**
   * Resolves with the first parsed log record, past or future, for which `pred` is true.
   * Rejects after `timeoutMs` (default 10 000) or when the process exits first.
   */
  // deno-lint-ignore no-explicit-any
  waitForLog(pred: (rec: any) => boolean, timeoutMs?: number): Promise<any>;
  /**
   * Sends `signal` (default SIGTERM; SIGKILL follows after 10 s), waits for the exit
   * and resolves with the exit code (128 + signal number when killed by a signal).
   */
  kill(signal?: Deno.Signal): Promise<number>;
  /** Stops this node if it runs, then starts a new one with the same env and data dir. */
  restart(): Promise<NodeProcess>;
}

/** Options for {@linkcode startNode}. */
export interface StartNodeOptions {
  /** Data dir to use (kept afterwards); default: a fresh temp dir removed on dispose. */
  dataDir?: string;
  /** Entry point to run instead of `<repo>/main.ts` (the harness's own tests use a fake). */
  main?: string;
  /**
   * When to resolve: on the `ready` line (default), or on the `http listening` line, as soon
   * as the gateway answers (a cluster node still waiting for NATS). With `"http"`, `mqttPort`,
   * `mqttUrl` and `mqttsPort` are undefined: read them from the `ready` line
   * (`waitForLog`) once it comes.
   */
  until?: "ready" | "http";
}

function nodeEnv(dataDir: string, env: Record<string, string>): Record<string, string> {
  return {
    TWINMILL_HTTP_PORT: "0",
    TWINMILL_MQTT_PORT: "0",
    TWINMILL_MQTTS_PORT: "0",
    TWINMILL_DATA_DIR: dataDir,
    TWINMILL_LOG: "info",
    NO_COLOR: "1",
    ...env,
  };
}

function nodeCommand(env: Record<string, string>, args: string[], main: string): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...START_FLAGS, main, ...args],
    cwd: REPO_ROOT,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

// deno-lint-ignore no-explicit-any
type Waiter = { pred: (rec: any) => boolean; resolve: (rec: any) => void };

/** Owns one node subprocess; see {@linkcode NodeProcess}. */
class NodeProc {
  readonly logs: string[] = [];
  readonly stdout: string[] = [];
  readonly pid: number;
  // deno-lint-ignore no-explicit-any
  readonly #records: any[] = [];
  readonly #waiters = new Set<Waiter>();
  readonly #child: Deno.ChildProcess;
  readonly #done: Promise<Deno.CommandStatus>;
  #exited = false;

  constructor(env: Record<string, string>, main: string) {
    this.#child = nodeCommand(env, [], main).spawn();
    this.pid = this.#child.pid;
    const tag = `twinmill ${this.pid}`;
    const readers = Promise.all([
      readLines(this.#child.stderr, (line) => this.#onLine(line, tag)),
      readLines(this.#child.stdout, (line) => {
        this.stdout.push(line);
        if (VERBOSE) forward(`${tag} stdout`, line);
      }),
    ]);
    this.#done = Promise.all([this.#child.status, readers]).then(([status]) => {
      this.#exited = true;
      return status;
    });
  }

  get exited(): boolean {
    return this.#exited;
  }

  get status(): Promise<Deno.CommandStatus> {
    return this.#done;
  }

  #onLine(line: string, tag: string): void {
    this.logs.push(line);
    if (VERBOSE) forward(tag, line);
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch {
      return;
    }
    if (rec === null || typeof rec !== "object") return;
    this.#records.push(rec);
    for (const w of this.#waiters) {
      if (matches(w.pred, rec)) w.resolve(rec);
    }
  }

  // deno-lint-ignore no-explicit-any
  waitForLog(pred: (rec: any) => boolean, timeoutMs = 10_000): Promise<any> {
    const past = this.#records.find((rec) => matches(pred, rec));
    if (past !== undefined) return Promise.resolve(past);
    return new Promise((resolve, reject) => {
      const settle = (fn: () => void) => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        fn();
      };
      // deno-lint-ignore no-explicit-any
      const waiter: Waiter = { pred, resolve: (rec: any) => settle(() => resolve(rec)) };
      const timer = setTimeout(
        () => settle(() => reject(this.#error(`no matching log line within ${timeoutMs} ms`))),
        timeoutMs,
      );
      this.#waiters.add(waiter);
      this.#done.then((s) => {
        if (!this.#waiters.has(waiter)) return;
        settle(() => reject(this.#error(`exited with code ${s.code} before a matching log line`)));
      });
    });
  }

  async kill(signal: Deno.Signal = "SIGTERM"): Promise<number> {
    if (this.#exited) return (await this.#done).code;
    return (await terminate(this.#child, this.#done, signal, 10_000)).code;
  }

  #error(what: string): Error {
    const out = this.stdout.length ? `\n--- stdout ---\n${this.stdout.join("\n")}` : "";
    const err = this.logs.join("\n") || "(none)";
    return new Error(`twinmill node (pid ${this.pid}) ${what}\n--- stderr ---\n${err}${out}`);
  }
}

// deno-lint-ignore no-explicit-any
function matches(pred: (rec: any) => boolean, rec: unknown): boolean {
  try {
    return pred(rec);
  } catch {
    return false;
  }
}

async function launch(
  env: Record<string, string>,
  main: string,
  ownedDir?: string,
  until: "ready" | "http" = "ready",
): Promise<NodeProcess> {
  const proc = new NodeProc(env, main);
  const line = until === "ready" ? "ready" : "http listening";
  let ready;
  try {
    ready = await proc.waitForLog(
      (r) => r.msg === line && typeof r.httpPort === "number",
      READY_TIMEOUT_MS,
    );
  } catch (err) {
    await proc.kill("SIGKILL");
    if (ownedDir) await removeDir(ownedDir);
    const msg = err instanceof Error ? err.message : String(err);
    throw new Error(`Cannot start twinmill node: ${msg}`, { cause: err });
  }
  let owned = ownedDir;
  const httpPort: number = ready.httpPort;
  const mqttPort: number | undefined = typeof ready.mqttPort === "number"
    ? ready.mqttPort
    : undefined;
  const node: NodeProcess = {
    httpUrl: `${env.TWINMILL_TLS_CERT ? "https" : "http"}://127.0.0.1:${httpPort}`,
    httpPort,
    mqttPort,
    mqttsPort: typeof ready.mqttsPort === "number" ? ready.mqttsPort : undefined,
    mqttUrl: mqttPort === undefined ? undefined : `mqtt://127.0.0.1:${mqttPort}`,
    dataDir: env.TWINMILL_DATA_DIR,
    pid: proc.pid,
    logs: proc.logs,
    stdout: proc.stdout,
    waitForLog: (pred, timeoutMs) => proc.waitForLog(pred, timeoutMs),
    kill: (signal) => proc.kill(signal),
    async restart() {
      if (!proc.exited) await proc.kill();
      const dir = owned;
      owned = undefined; // the new process removes the temp dir now
      return await launch(env, main, dir, until);
    },
    async [Symbol.asyncDispose]() {
      await proc.kill();
      if (owned) await removeDir(owned);
    },
  };
  return node;
}

/**
 * Spawns the twinmill node (`deno run <the start task's flags> main.ts` in the repo root) with
 * `TWINMILL_HTTP_PORT=0`, `TWINMILL_MQTT_PORT=0`, `TWINMILL_DATA_DIR`, `TWINMILL_LOG=info`,
 * `NO_COLOR=1` and then `env` over them, and resolves when it logs its `ready` line (with
 * `opts.until: "http"`: its `http listening` line). Rejects with the node's stderr if it exits
 * first or after 30 s.
 * Set `HARNESS_VERBOSE=1` to see its log lines.
 *
 * @example
 * ```ts
 * await using node = await startNode({ INFLUX_URL: influx.url });
 * const res = await fetch(`${node.httpUrl}/v1/twins`);
 * ```
 */
export async function startNode(
  env: Record<string, string> = {},
  opts: StartNodeOptions = {},
): Promise<NodeProcess> {
  const given = opts.dataDir ?? env.TWINMILL_DATA_DIR;
  const owned = given === undefined ? await makeTempDir("node") : undefined;
  const dataDir = given ?? owned!;
  const main = opts.main ?? MAIN;
  return await launch(
    nodeEnv(dataDir, { ...env, TWINMILL_DATA_DIR: dataDir }),
    main,
    owned,
    opts.until,
  );
}

/** Result of {@linkcode runNode}. */
export interface RunResult {
  /** Exit code (137 when the harness killed it after 15 s). */
  code: number;
  /** Everything it printed on stderr. */
  stderr: string;
  /** Everything it printed on stdout. */
  stdout: string;
}

/**
 * Runs `main.ts` with `args` to completion, with the same environment as
 * {@linkcode startNode} (fresh temp data dir) plus `env`, and returns its exit code and
 * output. It is killed after 15 s; meant for configuration errors that must exit.
 *
 * @example
 * ```ts
 * const { code, stderr } = await runNode({ TWINMILL_HTTP_PORT: "not-a-port" });
 * ```
 */
export async function runNode(
  env: Record<string, string> = {},
  args: string[] = [],
  opts: { main?: string } = {},
): Promise<RunResult> {
  const dir = await makeTempDir("node-run");
  try {
    const child = nodeCommand(nodeEnv(dir, env), args, opts.main ?? MAIN).spawn();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        child.kill("SIGKILL");
      } catch {
        // already exited
      }
    }, RUN_TIMEOUT_MS);
    const out = await child.output();
    clearTimeout(timer);
    const dec = new TextDecoder();
    let stderr = dec.decode(out.stderr);
    if (timedOut) {
      stderr += `\n[harness] killed after ${RUN_TIMEOUT_MS / 1000} s: main.ts did not exit`;
    }
    if (VERBOSE) { for (const line of stderr.split("\n")) forward("twinmill run", line); }
    return { code: out.code, stderr, stdout: dec.decode(out.stdout) };
  } finally {
    await removeDir(dir);
  }
}
