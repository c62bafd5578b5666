/**
 * Helpers for the tests that hold PromQL of `infra/` (the Grafana dashboard, the alerting
 * rules) against a real node: its `/metrics` parsed, the labels `src/obs/metrics.ts`
 * declares, the metric names a query uses, and the node's samples put in VictoriaMetrics (a
 * PromQL engine) as Prometheus's `twinmill` job would label them.
 * @module
 */
import assert from "node:assert/strict";
import { type HasHttp, REPO_ROOT, type VictoriaMetricsServer, waitFor } from "../harness/mod.ts";

/** One scrape of a node's `/metrics`. */
export interface Scrape {
  text: string;
  /** Metric names (from `# TYPE` lines and samples, `_bucket`/`_sum`/`_count` included). */
  names: Set<string>;
  /** Label names seen on each sample name. */
  labels: Map<string, Set<string>>;
}

/** Scrape a node once. */
export async function scrape(node: HasHttp): Promise<Scrape> {
  const res = await fetch(`${node.httpUrl}/metrics`);
  const text = await res.text();
  assert.equal(res.status, 200, text);
  const names = new Set<string>();
  const labels = new Map<string, Set<string>>();
  for (const line of text.split("\n")) {
    const type = /^# TYPE (\S+) /.exec(line);
    if (type) names.add(type[1]);
    const s = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? /.exec(line);
    if (!s) continue;
    names.add(s[1]);
    const set = labels.get(s[1]) ?? new Set<string>();
    for (const l of (s[2] ?? "").matchAll(/(\w+)="/g)) set.add(l[1]);
    labels.set(s[1], set);
  }
  return { text, names, labels };
}

/** Label names of each metric as `src/obs/metrics.ts` declares them. */
export async function declaredLabels(): Promise<Map<string, string[]>> {
  const src = await Deno.readTextFile(`${REPO_ROOT}/src/obs/metrics.ts`);
  const out = new Map<string, string[]>();
  for (const m of src.matchAll(/name: "([a-z0-9_]+)",([^}]*?)registers/gs)) {
    const labels = /labelNames: \[([^\]]*)\]/.exec(m[2]);
    out.set(m[1], labels ? [...labels[1].matchAll(/"([^"]+)"/g)].map((x) => x[1]) : []);
  }
  return out;
}

/** Metric names a PromQL expression selects (`name{...}`), PromQL's own words left out. */
export function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\b([a-zA-Z_:][\w:]*)\{/g)].map((m) => m[1])
    .filter((n) => !["by", "sum", "rate", "increase", "count"].includes(n));
}

/** Label names a PromQL expression uses: `by (...)` and matchers. */
export function labelsIn(expr: string): string[] {
  return [
    ...[...expr.matchAll(/\bby \(([^)]*)\)/g)].flatMap((m) => m[1].split(",").map((x) => x.trim())),
    ...[...expr.matchAll(/\{([^}]*)\}/g)].flatMap((m) =>
      [...m[1].matchAll(/(\w+)=~?"/g)].map((x) => x[1])
    ),
  ];
}

/**
 * Import a scrape into VictoriaMetrics as Prometheus's `twinmill` job labels it (`job`,
 * `instance`), stamped with the time of the import, and wait until its samples are searchable.
 */
export async function importScrape(
  vm: VictoriaMetricsServer,
  s: Scrape,
  instance = "10.0.0.2:8080",
): Promise<void> {
  const marker = `twinmill_process_start_time_seconds{job="twinmill",instance="${instance}"}`;
  const at = Date.now() / 1000;
  const imp = await fetch(
    `${vm.url}/api/v1/import/prometheus?extra_label=job=twinmill&extra_label=instance=${instance}`,
    { method: "POST", body: s.text },
  );
  await imp.body?.cancel();
  assert.equal(imp.status, 204);
  // searchable: a query's newest sample is this import's (VictoriaMetrics stamps it on arrival)
  await waitFor(async () => {
    await vm.flush();
    const r = await vm.query(`timestamp(${marker})`);
    return Number(r.data.result[0]?.value[1] ?? 0) >= at - 0.001;
  }, { message: "the node's samples in VictoriaMetrics" });
}
