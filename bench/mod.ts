/**
 * twinmill benchmarks: `deno task bench [--quick] [--out=FILE] [bench…]` (all when none is
 * named).
 *
 * Each bench measures its own baseline in the same run and reports the ratio. The table is
 * printed on stdout and written to `bench/RESULTS.md` (with `--quick`: `bench/RESULTS.quick.md`,
 * git-ignored; `--out=FILE` elsewhere) with the machine, the date, the versions of Deno and of
 * the servers, and the load average before and after; progress goes to stderr. Every process
 * a bench starts is stopped at the end, also on error and on Ctrl-C.
 *
 * `--quick` runs every bench in a small form (small counts, one round, short wrk runs): the
 * whole suite in about 2 minutes on an idle 2-core machine, to prove that it works (`deno task ok` runs
 * it); its figures are marked and not comparable with a full run. A quick run then checks its
 * results document (`quick_check.ts`) and that `bench/RESULTS.md` was left alone, and exits 1
 * if either fails.
 *
 * @example
 * ```sh
 * deno task bench                 # every bench (about 11 minutes on 2 cores)
 * deno task bench ingest fanout   # only the named benches
 * deno task bench --quick         # everything, small and fast
 * ```
 * @module
 */
import { benchIngest } from "./ingest.ts";
import { benchIngestInflux } from "./ingest_influx.ts";
import { benchMemory } from "./memory.ts";
import { benchMemory1m } from "./memory_1m.ts";
import { benchHttp } from "./http.ts";
import { benchCluster } from "./cluster.ts";
import { benchBalance } from "./balance.ts";
import { benchRules } from "./rules.ts";
import { benchFanout } from "./fanout.ts";
import { benchInflux } from "./influx.ts";
import { benchFailover } from "./failover.ts";
import { benchRolling } from "./rolling.ts";
import { benchFactory } from "./factory.ts";
import { benchMqttFront } from "./mqtt_front.ts";
import { benchCluster1m } from "./cluster_1m.ts";
import { benchCapacity, QUICK as CAPACITY_QUICK } from "./capacity.ts";
import { type BenchRow, document, environment, loadAverage, notes, table } from "./report.ts";
import { cleanup, log } from "./proc.ts";
import { quickRunProblems } from "./quick_check.ts";

type Bench = (quick: boolean) => Promise<BenchRow | BenchRow[]>;

/** The benches, in the order they run; a bench may give more than one row. */
export const BENCHES: Record<string, Bench> = {
  ingest: (q) => benchIngest(q ? { publishers: 10, messages: 300, warmup: 50, rounds: 1 } : {}),
  "ingest-influx": (q) =>
    benchIngestInflux(q ? { publishers: 10, messages: 300, warmup: 50, rounds: 1 } : {}),
  memory: (q) => benchMemory(q ? { twins: 10_000, clients: 2, inflight: 200, settleMs: 2000 } : {}),
  "memory-1m": (q) =>
    benchMemory1m(q ? { twins: 20_000, connections: 2, settleMs: 2000, getSeconds: 2 } : {}),
  http: (q) => benchHttp(q ? { seconds: 2, warmupSeconds: 1, rounds: 1 } : {}),
  rules: (q) => benchRules(q ? { publishers: 10, messages: 300, warmup: 50, rounds: 1 } : {}),
  cluster: (q) =>
    benchCluster(
      q
        ? {
          jsMessages: 3000,
          publishers: 9,
          messages: 200,
          warmup: 20,
          rounds: 1,
          seconds: 2,
          warmupSeconds: 1,
          at50: false,
        }
        : {},
    ),
  balance: (q) => benchBalance(q ? { five: false } : {}),
  fanout: (q) => benchFanout(q ? { messages: 500, warmup: 100, rounds: 1 } : {}),
  influx: (q) => benchInflux(q ? { points: 20_000, rounds: 1 } : {}),
  failover: (q) => benchFailover(q ? { natsServers: 1, nodes: 2, twins: 100, rounds: 1 } : {}),
  rolling: (q) => benchRolling(q ? { nodes: 2, natsRestarts: 1, devices: 10 } : {}),
  factory: (q) => benchFactory(q ? { devices: 1000, seconds: 5, perProcess: 500 } : {}),
  "mqtt-front": (q) =>
    benchMqttFront(
      q ? { devices: 100, rates: [2], seconds: 1.5, rounds: 1, sample: 10, idleSeconds: 2 } : {},
    ),
  capacity: (q) => benchCapacity(q ? CAPACITY_QUICK : {}),
  "cluster-1m": (q) =>
    benchCluster1m(q ? { twins: 3000, getSeconds: 2, sample: 50, settleMs: 1000 } : {}),
};

/** Where a full run's results are written. */
export const RESULTS = new URL("./RESULTS.md", import.meta.url);
/** Where a quick run's results are written (git-ignored). */
export const QUICK_RESULTS = new URL("./RESULTS.quick.md", import.meta.url);

/** Parsed command line. */
interface Args {
  quick: boolean;
  out: string;
  names: string[];
}

function parseArgs(args: string[]): Args | string {
  let quick = false;
  let out: string | undefined;
  const names: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--quick") quick = true;
    else if (a.startsWith("--out=")) out = a.slice("--out=".length);
    else if (a === "--out" && i + 1 < args.length) out = args[++i];
    else if (a.startsWith("-")) return `Unknown option "${a}": use --quick, --out=FILE`;
    else if (!(a in BENCHES)) {
      return `Unknown bench "${a}": choose from ${Object.keys(BENCHES).join(", ")}`;
    } else names.push(a);
  }
  if (out === "") return "--out needs a file name";
  return { quick, out: out ?? (quick ? QUICK_RESULTS : RESULTS).pathname, names };
}

/** Runs the benches named in `args` (all if none); returns the process exit code. */
export async function main(args: string[]): Promise<number> {
  const parsed = parseArgs(args);
  if (typeof parsed === "string") {
    console.error(parsed);
    return 2;
  }
  const { quick, out } = parsed;
  const names = parsed.names.length > 0
    ? Object.keys(BENCHES).filter((b) => parsed.names.includes(b))
    : Object.keys(BENCHES);
  const loadBefore = loadAverage();
  const fullBefore = await Deno.readTextFile(RESULTS).catch(() => null);
  const rows: BenchRow[] = [];
  let failed = false;
  const t0 = performance.now();
  for (const name of names) {
    log(`${name}: start${quick ? " (quick)" : ""}`);
    const started = performance.now();
    try {
      rows.push(...[await BENCHES[name](quick)].flat());
    } catch (err) {
      failed = true;
      const msg = err instanceof Error ? err.message : String(err);
      log(`${name}: FAILED: ${msg}`);
      rows.push({
        bench: name,
        result: "failed",
        baseline: "-",
        ratio: "-",
        target: "-",
        notes: [`failed: ${msg.split("\n")[0]}`],
      });
    } finally {
      await cleanup();
    }
    log(`${name}: ${((performance.now() - started) / 1000).toFixed(0)} s`);
  }
  const secs = (performance.now() - t0) / 1000;
  log(`done in ${secs.toFixed(0)} s`);
  if (quick) { for (const r of rows) r.bench += " (quick)"; }
  const env = environment({
    loadBefore,
    quick,
    duration: `${quick ? "`--quick`, " : ""}${names.join(", ")} in ${Math.round(secs)} s`,
  });
  console.log(
    `\n${env.date} — ${env.deno} — ${env.cpu} — load ${env.loadBefore} → ` +
      `${env.loadAfter}${quick ? " — QUICK RUN" : ""}\n`,
  );
  console.log(table(rows));
  console.log(`\n${notes(rows)}\n`);
  await Deno.writeTextFile(out, document(rows, env));
  // Format it as `deno fmt --check` (in `deno task ok`) expects.
  await new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--quiet", out],
    stdout: "null",
    stderr: "null",
  }).output();
  log(`wrote ${out}`);
  if (quick) {
    const problems = quickRunProblems(await Deno.readTextFile(out), names);
    const fullAfter = await Deno.readTextFile(RESULTS).catch(() => null);
    const overwritten = fullAfter !== fullBefore;
    if (overwritten && await Deno.realPath(out) !== await Deno.realPath(RESULTS)) {
      problems.push("bench/RESULTS.md was overwritten");
    }
    for (const p of problems) log(`quick run check: ${p}`);
    if (problems.length > 0) failed = true;
    else log("quick run check: every bench gave a row with a figure and a ratio");
  }
  return failed ? 1 : 0;
}

if (import.meta.main) {
  const stop = async () => {
    log("interrupted: stopping every process started");
    await cleanup();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  let code = 1;
  try {
    code = await main(Deno.args);
  } finally {
    await cleanup();
  }
  Deno.exit(code);
}
