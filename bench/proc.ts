/**
 * Process bookkeeping for the benchmarks: every child and server is registered here so that
 * {@linkcode cleanup} can stop all of them, on success, on error and on Ctrl-C. Also reads
 * CPU time and memory of a process from `/proc`.
 * @module
 */

/** Something to stop at the end of the run. */
type Stoppable = { name: string; stop(): PromiseLike<void> };

const live = new Set<Stoppable>();

/** Registers `s` for {@linkcode cleanup}; returns a function that unregisters it. */
export function track(s: Stoppable): () => void {
  live.add(s);
  return () => live.delete(s);
}

/** Stops every registered process and server, newest first; never throws. */
export async function cleanup(): Promise<void> {
  for (const s of [...live].reverse()) {
    live.delete(s);
    try {
      await s.stop();
    } catch (err) {
      log(`cannot stop ${s.name}: ${err instanceof Error ? err.message : err}`);
    }
  }
}

/**
 * Registers an `AsyncDisposable` server (e.g. a harness node) for {@linkcode cleanup}; its
 * `dispose()` stops it earlier and may be called more than once.
 */
export function trackDisposable<T extends AsyncDisposable>(name: string, d: T): T & {
  dispose(): Promise<void>;
} {
  let disposed: Promise<void> | undefined;
  const dispose = () => disposed ??= Promise.resolve(d[Symbol.asyncDispose]());
  const untrack = track({ name, stop: dispose });
  return Object.assign(d, {
    dispose: () => {
      untrack();
      return dispose();
    },
  });
}

/** A spawned child process that {@linkcode cleanup} kills if it still runs. */
export interface Child {
  pid: number;
  child: Deno.ChildProcess;
  /** Resolves with the exit status; unregisters the child. */
  status: Promise<Deno.CommandStatus>;
  /** SIGTERM, then SIGKILL after 3 s; resolves once it has exited. */
  kill(): Promise<void>;
}

/** Spawns `cmd` with `args` and registers it for {@linkcode cleanup}. */
export function spawn(cmd: string, args: string[], opts: Deno.CommandOptions = {}): Child {
  const child = new Deno.Command(cmd, {
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    ...opts,
    args,
  }).spawn();
  let exited = false;
  const kill = async () => {
    if (!exited) signal(child, "SIGTERM");
    const t = setTimeout(() => signal(child, "SIGKILL"), 3000);
    await child.status;
    clearTimeout(t);
  };
  const untrack = track({ name: `${cmd} (pid ${child.pid})`, stop: kill });
  const status = child.status.then((s) => {
    exited = true;
    untrack();
    return s;
  });
  return { pid: child.pid, child, status, kill };
}

function signal(child: Deno.ChildProcess, sig: Deno.Signal): void {
  try {
    child.kill(sig);
  } catch {
    // already exited
  }
}

/** Reads a whole stream as text (e.g. a child's stderr), never rejecting. */
export async function readAll(stream: ReadableStream<Uint8Array> | null): Promise<string> {
  if (!stream) return "";
  try {
    return await new Response(stream).text();
  } catch {
    return "";
  }
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux (getconf CLK_TCK)

/**
 * CPU seconds (user + system) used so far by `pid` (all its threads), or only by its main
 * thread when `mainThread` is set; 0 if it is gone.
 */
export function cpuSeconds(pid: number, mainThread = false): number {
  try {
    const path = mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`;
    const stat = Deno.readTextFileSync(path);
    // Fields after the ")" that ends the command name; utime and stime are fields 14 and 15.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** CPU seconds used by this process's exited, reaped children (`cutime + cstime`). */
export function reapedChildrenCpuSeconds(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[13]) + Number(f[14])) / TICKS_PER_SECOND;
}

/** Busy and total CPU seconds of the whole machine (all cores) from `/proc/stat`. */
export function machineCpu(): { busy: number; total: number } {
  const line = Deno.readTextFileSync("/proc/stat").split("\n")[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = v[3] + v[4];
  return { busy: (total - idle) / TICKS_PER_SECOND, total: total / TICKS_PER_SECOND };
}

/**
 * Pids of this process's children whose command name (`/proc/<pid>/comm`) is `comm`, e.g. a
 * server the test harness started (the harness does not expose its pid); newest last.
 */
export function childPids(comm: string): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (name === comm && ppid === Deno.pid) out.push(Number(e.name));
    } catch {
      // gone meanwhile
    }
  }
  return out.sort((a, b) => a - b);
}

/** A `VmRSS` / `VmHWM` style field of `/proc/<pid>/status`, in MiB. */
export function memMiB(pid: number, field: "VmRSS" | "VmHWM" = "VmRSS"): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const m = status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
  if (!m) throw new Error(`Cannot read ${field} of pid ${pid}`);
  return Number(m[1]) / 1024;
}

/**
 * Measures CPU use of some processes and of the machine between `start` and `stop`.
 *
 * @example
 * ```ts
 * const cpu = cpuMeter({ node: node.pid }, { "node main thread": node.pid });
 * // ... load ...
 * cpu.stop(); // { node: 0.93, "node main thread": 0.7, ..., machine: 1.88 } (cores busy)
 * ```
 */
export function cpuMeter(
  pids: Record<string, number>,
  mainThreads: Record<string, number> = {},
): { stop(): Record<string, number> } {
  const t0 = performance.now();
  const m0 = machineCpu();
  const p0 = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
  const t0s = Object.fromEntries(
    Object.entries(mainThreads).map(([k, pid]) => [k, cpuSeconds(pid, true)]),
  );
  const self0 = cpuSeconds(Deno.pid);
  const children0 = reapedChildrenCpuSeconds();
  return {
    stop() {
      const wall = (performance.now() - t0) / 1000;
      const m1 = machineCpu();
      const out: Record<string, number> = {};
      for (const [k, pid] of Object.entries(pids)) out[k] = (cpuSeconds(pid) - p0[k]) / wall;
      for (const [k, pid] of Object.entries(mainThreads)) {
        out[k] = (cpuSeconds(pid, true) - t0s[k]) / wall;
      }
      out.bench = (cpuSeconds(Deno.pid) - self0) / wall;
      out["clients"] = (reapedChildrenCpuSeconds() - children0) / wall;
      out.machine = (m1.busy - m0.busy) / wall;
      return out;
    },
  };
}

/** Formats a {@linkcode cpuMeter} reading: `node 0.93 cores, machine 1.88 of 2 cores`. */
export function formatCpu(c: Record<string, number>): string {
  const cores = navigator.hardwareConcurrency;
  return Object.entries(c)
    .map(([k, v]) => k === "machine" ? `machine ${v.toFixed(2)}/${cores}` : `${k} ${v.toFixed(2)}`)
    .join(", ") + " cores busy";
}

/** Writes a progress line on stderr. */
export function log(msg: string): void {
  const t = new Date().toISOString().slice(11, 19);
  console.error(`[bench ${t}] ${msg}`);
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
