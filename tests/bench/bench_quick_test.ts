/**
 * The benchmark suite works: `deno task bench --quick` runs every bench in its small form
 * once, exits 0, and writes a results file with one row per bench, each with a figure and a
 * ratio to its same-run baseline. The figures' values are not asserted (they depend on the
 * machine); the full run's `bench/RESULTS.md` is left alone.
 */
import assert from "node:assert/strict";
import { REPO_ROOT } from "../harness/mod.ts";

/** The rows a run of every bench gives (cluster gives two). */
const ROWS = [
  "ingest",
  "memory",
  "http",
  "rules",
  "cluster-ingest",
  "cluster-routed-get",
  "fanout",
  "influx",
  "failover",
];

Deno.test("deno task bench --quick runs every bench and writes a row with a figure and a ratio for each", async () => {
  const dir = await Deno.makeTempDir({ prefix: "twinmill-bench-quick-" });
  try {
    const out = `${dir}/RESULTS.quick.md`;
    const full = `${REPO_ROOT}/bench/RESULTS.md`;
    const before = await Deno.readTextFile(full);
    const run = await new Deno.Command(Deno.execPath(), {
      args: ["task", "bench", "--quick", `--out=${out}`],
      cwd: REPO_ROOT,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(run.stdout);
    const stderr = new TextDecoder().decode(run.stderr);
    assert.equal(
      run.code,
      0,
      `bench --quick exited ${run.code}\n${stdout}\n${stderr.slice(-4000)}`,
    );

    const doc = await Deno.readTextFile(out);
    assert.match(doc, /^# twinmill benchmark results \(quick run\)/);
    for (const field of ["date", "machine", "deno", "servers", "load average"]) {
      assert.match(doc, new RegExp(`^- ${field}[^:]*: \\S`, "m"), `the header names the ${field}`);
    }
    const rows = doc.split("\n").filter((l) => l.startsWith("| ") && !l.startsWith("| bench"))
      .filter((l) => !/^\|[\s-|]+\|$/.test(l))
      .map((l) => l.slice(1, -1).split("|").map((c) => c.trim()));
    assert.deepEqual(rows.map((r) => r[0]), ROWS.map((b) => `${b} (quick)`));
    for (const [bench, result, baseline, ratio, target] of rows) {
      assert.match(result, /\d[\d,.]* (msgs\/s|req\/s|points\/s|MiB|s)\b/, `${bench}: ${result}`);
      assert.match(
        baseline,
        /\d[\d,.]* (msgs\/s|req\/s|points\/s|MiB|s)\b/,
        `${bench}: ${baseline}`,
      );
      assert.match(ratio, /^\d+\.\d\d×/, `${bench}: ratio "${ratio}"`);
      assert.match(target, /\((met|NOT met)\)$/, `${bench}: target "${target}"`);
    }
    // The same table on stdout, and the full run's results untouched.
    for (const b of ROWS) assert.ok(stdout.includes(`| ${b} (quick) |`), `${b} on stdout`);
    assert.equal(await Deno.readTextFile(full), before, "bench/RESULTS.md is not overwritten");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
