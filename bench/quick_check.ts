/**
 * The check of a quick run (`deno task bench --quick`, part of `deno task ok`): the results
 * document is marked as a quick run, names the machine, and has one row per bench run, each
 * with a figure, its same-run baseline, a ratio and a target with its verdict. The figures'
 * values are not checked (they depend on the machine).
 * @module
 */

/** Rows of the benches that give more than one; every other bench gives one, its name. */
const ROWS_OF: Record<string, string[]> = {
  ingest: ["ingest", "ingest-default"],
  cluster: ["cluster-ingest", "cluster-routed-get"],
};

/** A figure with its unit, e.g. `12,345 msgs/s`, `41.2 MiB`, `3.5 ms` or `22/21/21 shards`. */
const FIGURE = /\d[\d,.]* (msgs\/s|req\/s|points\/s|MiB|ms|s|shards)\b/;

/** The header fields every results document names. */
const FIELDS = ["date", "machine", "deno", "servers", "load average"];

/** The rows a run of `benches` gives, in order. */
export function expectedRows(benches: string[]): string[] {
  return benches.flatMap((b) => ROWS_OF[b] ?? [b]);
}

/**
 * What is wrong with `doc`, the results document of a quick run of `benches` (in the order
 * they ran); empty when nothing is.
 */
export function quickRunProblems(doc: string, benches: string[]): string[] {
  const problems: string[] = [];
  if (!/^# twinmill benchmark results \(quick run\)/.test(doc)) {
    problems.push("the document is not titled as a quick run");
  }
  for (const field of FIELDS) {
    if (!new RegExp(`^- ${field}[^:]*: \\S`, "m").test(doc)) {
      problems.push(`the header does not name the ${field}`);
    }
  }
  const rows = doc.split("\n")
    .filter((l) => l.startsWith("| ") && !l.startsWith("| bench") && !/^\|[\s-|]+\|$/.test(l))
    .map((l) => l.slice(1, -1).split("|").map((c) => c.trim()));
  const names = rows.map((r) => r[0]);
  const want = expectedRows(benches).map((b) => `${b} (quick)`);
  if (names.join("\n") !== want.join("\n")) {
    problems.push(`rows ${JSON.stringify(names)}, expected ${JSON.stringify(want)}`);
  }
  for (const [bench, result, baseline, ratio, target] of rows) {
    if (!FIGURE.test(result ?? "")) problems.push(`${bench}: no figure in result "${result}"`);
    if (!FIGURE.test(baseline ?? "")) {
      problems.push(`${bench}: no figure in baseline "${baseline}"`);
    }
    if (!/^\d+\.\d\d×/.test(ratio ?? "")) problems.push(`${bench}: no ratio in "${ratio}"`);
    if (!/\((met|NOT met)\)$/.test(target ?? "")) {
      problems.push(`${bench}: no verdict in target "${target}"`);
    }
  }
  return problems;
}
