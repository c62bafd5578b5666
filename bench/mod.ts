/**
 * twinmill benchmarks: `deno task bench [ingest] [memory] [http] [rules] [cluster]` (all when none is
 * named).
 *
 * Each bench measures its own baseline in the same run and reports the ratio. The table is
 * printed on stdout and written to `bench/results.md` with the date, the Deno version and
 * the CPU model; progress goes to stderr. Every process a bench starts is stopped at the end,
 * also on error and on Ctrl-C.
 *
 * @example
 * ```sh
 * deno task bench          # ingest, memory, http and cluster (about 4 minutes)
 * deno task bench ingest   # only the ingest bench
 * ```
 * @module
 */
import { benchIngest } from "./ingest.ts";
import { benchMemory } from "./memory.ts";
import { benchHttp } from "./http.ts";
import { benchCluster } from "./cluster.ts";
import { benchRules } from "./rules.ts";
import { type BenchRow, document, environment, notes, table } from "./report.ts";
import { cleanup, log } from "./proc.ts";

/** The benches, in the order they run; a bench may give more than one row. */
export const BENCHES: Record<string, () => Promise<BenchRow | BenchRow[]>> = {
  ingest: () => benchIngest(),
  memory: () => benchMemory(),
  http: () => benchHttp(),
  rules: () => benchRules(),
  cluster: () => benchCluster(),
};

/** Where the results are written. */
const RESULTS = new URL("./results.md", import.meta.url);

/** Runs the benches named in `args` (all if empty); returns the process exit code. */
export async function main(args: string[]): Promise<number> {
  const unknown = args.filter((a) => !(a in BENCHES));
  if (unknown.length > 0) {
    console.error(
      `Unknown bench "${unknown[0]}": choose from ${Object.keys(BENCHES).join(", ")}`,
    );
    return 2;
  }
  const names = args.length > 0 ? Object.keys(BENCHES).filter((b) => args.includes(b)) : Object
    .keys(BENCHES);
  const rows: BenchRow[] = [];
  let failed = false;
  const t0 = performance.now();
  for (const name of names) {
    log(`${name}: start`);
    try {
      rows.push(...[await BENCHES[name]()].flat());
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
  }
  log(`done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  const env = environment();
  console.log(`\n${env.date} — ${env.deno} — ${env.cpu}\n`);
  console.log(table(rows));
  console.log(`\n${notes(rows)}\n`);
  await Deno.writeTextFile(RESULTS, document(rows, env));
  // Format it as `deno fmt --check` (in `deno task ok`) expects.
  await new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--quiet", RESULTS.pathname],
    stdout: "null",
  }).output();
  log(`wrote ${RESULTS.pathname}`);
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
