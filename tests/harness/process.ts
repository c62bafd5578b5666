import { waitFor } from "./wait_for.ts";

/** True when env `HARNESS_VERBOSE=1`: child output is then copied to the test's stderr. */
export const VERBOSE = Deno.env.get("HARNESS_VERBOSE") === "1";

const encoder = new TextEncoder();

/** Writes one line to the test's stderr, prefixed with `[name]`. */
export function forward(name: string, line: string): void {
  Deno.stderr.writeSync(encoder.encode(`[${name}] ${line}\n`));
}

/**
 * Reads `stream` as UTF-8 text and calls `onLine` for each line (without the newline).
 * Resolves when the stream ends; never rejects.
 */
export async function readLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let rest = "";
  try {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      rest += chunk;
      let nl: number;
      while ((nl = rest.indexOf("\n")) >= 0) {
        onLine(rest.slice(0, nl).replace(/\r$/, ""));
        rest = rest.slice(nl + 1);
      }
    }
  } catch {
    // the pipe broke because the process died: nothing more to read
  }
  if (rest) onLine(rest);
}

/** Thrown when a server process exits while the harness waits for it to become ready. */
export class ProcessExitedError extends Error {
  override name = "ProcessExitedError";
  /** Stable code for this condition. */
  readonly code = "PROCESS_EXITED";
}

/** How to spawn a {@linkcode ServerProcess}. */
export interface ServerProcessOptions {
  /** Short name used in messages and verbose output, e.g. `influxd`. */
  name: string;
  /** Absolute path of the binary. */
  cmd: string;
  /** Command-line arguments. */
  args: string[];
  /** Working directory. */
  cwd?: string;
  /** Extra environment variables, merged over the test's environment. */
  env?: Record<string, string>;
}

/** Lines of output kept for error messages. */
const TAIL_LINES = 200;

/**
 * A spawned server binary whose stdout and stderr are drained into a bounded tail
 * (shown in errors) and forwarded when `HARNESS_VERBOSE=1`.
 */
export class ServerProcess {
  /** Name used in messages. */
  readonly name: string;
  /** Resolves with the exit status once the process has exited. */
  readonly status: Promise<Deno.CommandStatus>;
  #child: Deno.ChildProcess;
  #tail: string[] = [];
  #readers: Promise<void>[];
  #exited = false;

  private constructor(opts: ServerProcessOptions) {
    this.name = opts.name;
    this.#child = new Deno.Command(opts.cmd, {
      args: opts.args,
      cwd: opts.cwd,
      env: opts.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const onLine = (line: string) => {
      this.#tail.push(line);
      if (this.#tail.length > TAIL_LINES) this.#tail.shift();
      if (VERBOSE) forward(this.name, line);
    };
    this.#readers = [
      readLines(this.#child.stdout, onLine),
      readLines(this.#child.stderr, onLine),
    ];
    this.status = this.#child.status.then((s) => {
      this.#exited = true;
      return s;
    });
  }

  /** Spawns the process (it is not awaited to be ready: see {@linkcode waitReady}). */
  static spawn(opts: ServerProcessOptions): ServerProcess {
    return new ServerProcess(opts);
  }

  /** Process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /** True once the process has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /** The last lines the process printed, joined by newlines. */
  output(): string {
    return this.#tail.join("\n");
  }

  /**
   * Polls `check` until it is truthy. Throws {@linkcode ProcessExitedError} at once if
   * the process exits first; on timeout, stops the process and throws. Both errors
   * include the process's last output.
   */
  async waitReady(
    check: () => unknown | Promise<unknown>,
    what: string,
    timeoutMs = 20_000,
  ): Promise<void> {
    const ac = new AbortController();
    this.status.then((s) => {
      ac.abort(new ProcessExitedError(`${this.name} exited with code ${s.code} before ${what}`));
    });
    try {
      await waitFor(check, {
        timeoutMs,
        intervalMs: 50,
        message: `${this.name}: ${what}`,
        signal: ac.signal,
      });
    } catch (err) {
      await this.stop("SIGKILL");
      const msg = err instanceof Error ? err.message : String(err);
      const out = this.output();
      const full = `${msg}\n--- ${this.name} output ---\n${out || "(none)"}`;
      if (err instanceof ProcessExitedError) throw new ProcessExitedError(full, { cause: err });
      throw new Error(full, { cause: err });
    } finally {
      ac.abort();
    }
  }

  /**
   * Sends `signal` (default SIGTERM), waits for exit, escalating to SIGKILL after
   * `graceMs`, and waits until its output is drained. Safe to call more than once.
   */
  async stop(signal: Deno.Signal = "SIGTERM", graceMs = 5_000): Promise<Deno.CommandStatus> {
    const status = this.#exited
      ? await this.status
      : await terminate(this.#child, this.status, signal, graceMs);
    await Promise.all(this.#readers);
    return status;
  }
}

/**
 * Sends `signal` to `child`, escalating to SIGKILL if `done` has not settled after
 * `graceMs`; resolves with `done`. Signalling a process that already exited is harmless.
 */
export async function terminate<T>(
  child: Deno.ChildProcess,
  done: Promise<T>,
  signal: Deno.Signal,
  graceMs: number,
): Promise<T> {
  const send = (s: Deno.Signal) => {
    try {
      child.kill(s);
    } catch {
      // already exited
    }
  };
  send(signal);
  const timer = setTimeout(() => send("SIGKILL"), graceMs);
  try {
    return await done;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Calls `start` up to `attempts` times while it fails with {@linkcode ProcessExitedError}
 * (usually a free port taken by someone else between lookup and bind).
 */
export async function retryOnExit<T>(start: () => Promise<T>, attempts = 3): Promise<T> {
  for (let i = 1;; i++) {
    try {
      return await start();
    } catch (err) {
      if (!(err instanceof ProcessExitedError) || i >= attempts) throw err;
    }
  }
}

/** Creates a fresh temp dir whose name starts with `twinmill-<what>-`. */
export function makeTempDir(what: string): Promise<string> {
  return Deno.makeTempDir({ prefix: `twinmill-${what}-` });
}

/** Removes `path` recursively; a missing path is fine. */
export async function removeDir(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

/** Fetches `url` and returns the body text; throws on a non-2xx status. */
export async function httpText(
  url: string,
  init?: RequestInit & { client?: Deno.HttpClient },
): Promise<string> {
  const res = await fetch(url, init);
  const body = await res.text();
  if (!res.ok) throw new Error(`${init?.method ?? "GET"} ${url} -> ${res.status}: ${body}`);
  return body;
}
