/**
 * The Prometheus alerting rules (`infra/alerts.yml`) kept honest against real nodes: the file
 * is well formed and loaded by `infra/prometheus.yml` and the compose file; every metric and
 * label an expression names is on a node's `/metrics`; every expression evaluates in a PromQL
 * engine (VictoriaMetrics) over a node's scrapes; a healthy node fires nothing, and a node
 * whose InfluxDB is down fires the InfluxDB alert. Prometheus itself cannot run here.
 */
import assert from "node:assert/strict";
import {
  metric,
  mosquittoPub,
  REPO_ROOT,
  startNode,
  startVictoriaMetrics,
  waitFor,
} from "../harness/mod.ts";
import { freePort } from "../harness/free_port.ts";
import { parseYaml } from "./yaml.ts";
import { declaredLabels, importScrape, labelsIn, metricsIn, scrape } from "./promql.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: { severity: string };
  annotations: { summary: string; description: string };
}

async function rules(): Promise<Rule[]> {
  const doc = parseYaml(await Deno.readTextFile(`${REPO_ROOT}/infra/alerts.yml`)) as Json;
  assert.equal(doc.groups.length, 1);
  assert.equal(doc.groups[0].name, "twinmill");
  return doc.groups[0].rules;
}

Deno.test("alerts: well-formed rules that Prometheus loads in the compose cluster", async () => {
  const all = await rules();
  assert.ok(all.length >= 10, `${all.length} rules`);
  const names = all.map((r) => r.alert);
  assert.equal(new Set(names).size, names.length, "alert names are unique");
  for (const r of all) {
    assert.match(r.alert, /^Twinmill[A-Z][A-Za-z]+$/);
    assert.ok(r.expr.length > 0, r.alert);
    if (r.for !== undefined) assert.match(r.for, /^\d+[smh]$/, `${r.alert}: for`);
    assert.ok(["critical", "warning", "info"].includes(r.labels.severity), r.alert);
    assert.ok(r.annotations.summary && r.annotations.description, `${r.alert}: annotations`);
    // scoped to twinmill's job like the dashboard, so other jobs never match
    for (const sel of r.expr.matchAll(/\b(\w+)\{([^}]*)\}/g)) {
      if (["by", "sum", "rate", "increase"].includes(sel[1])) continue;
      assert.match(sel[2], /job="twinmill"/, `${r.alert}: ${sel[1]}`);
    }
  }
  const prom = parseYaml(await Deno.readTextFile(`${REPO_ROOT}/infra/prometheus.yml`)) as Json;
  assert.deepEqual(prom.rule_files, ["alerts.yml"]);
  const compose = await Deno.readTextFile(`${REPO_ROOT}/infra/compose.yaml`);
  assert.match(compose, /- \.\/alerts\.yml:\/etc\/prometheus\/alerts\.yml:ro/);
});

/** Scrape `node` twice, `gapMs` apart, into `vm` under `instance` (rates need two samples). */
async function scrapeTwice(
  vm: Awaited<ReturnType<typeof startVictoriaMetrics>>,
  node: Parameters<typeof scrape>[0],
  instance: string,
  between: () => Promise<void>,
) {
  await importScrape(vm, await scrape(node), instance);
  await between();
  const s = await scrape(node);
  await importScrape(vm, s, instance);
  return s;
}

/** Series an expression returns for one instance. */
async function firing(vm: Json, expr: string, instance: string): Promise<Json[]> {
  await vm.flush();
  const r = await vm.query(expr);
  assert.equal(r.status, "success", `${expr}: ${JSON.stringify(r)}`);
  return r.data.result.filter((s: Json) => s.metric.instance === instance);
}

Deno.test("alerts: every expression runs on a real node's metrics; healthy fires nothing, InfluxDB down fires", async () => {
  const all = await rules();
  await using vm = await startVictoriaMetrics();
  await using healthy = await startNode();
  // InfluxDB on a port nobody listens on: every write fails and is retried
  await using cut = await startNode({
    INFLUX_URL: `http://127.0.0.1:${await freePort()}`,
    INFLUX_API: "v1",
  });

  const publish = async (port: number, n: number) => {
    const lines = Array.from({ length: n }, (_, i) => JSON.stringify({ temp: 20 + i }));
    const r = await mosquittoPub(
      ["-p", String(port), "-q", "1", "-t", "twins/press-1/telemetry", "-l"],
      lines.join("\n") + "\n",
    );
    assert.equal(r.code, 0, r.stderr);
  };
  const s = await scrapeTwice(vm, healthy, "10.0.0.2:8080", () => publish(healthy.mqttPort!, 20));
  await scrapeTwice(vm, cut, "10.0.0.3:8080", async () => {
    await publish(cut.mqttPort!, 5);
    await waitFor(async () => (await metric(cut, "twinmill_influx_write_retries_total")) >= 2, {
      message: "InfluxDB writes retried",
    });
  });

  // every metric and label the rules name exists on the node
  const declared = await declaredLabels();
  const base = (n: string) => n.replace(/_(bucket|sum|count)$/, "");
  for (const r of all) {
    const used = metricsIn(r.expr);
    assert.ok(used.length > 0, `${r.alert}: ${r.expr}`);
    const allowed = new Set(["job", "instance", "le"]);
    for (const n of used) {
      if (n === "up") continue; // Prometheus's own per-target series
      assert.ok(s.names.has(n), `${r.alert}: metric ${n} is not in the node's /metrics`);
      for (const l of declared.get(base(n)) ?? declared.get(n) ?? []) allowed.add(l);
      for (const l of s.labels.get(n) ?? []) allowed.add(l);
    }
    for (const l of labelsIn(r.expr)) {
      assert.ok(allowed.has(l), `${r.alert}: label "${l}" on ${used.join(", ")}`);
    }
  }

  // a healthy node that took traffic: every expression evaluates, none fires
  for (const r of all) {
    const got = await firing(vm, r.expr, "10.0.0.2:8080");
    assert.deepEqual(got, [], `${r.alert} fires on a healthy node: ${JSON.stringify(got)}`);
  }
  // InfluxDB down: its alert fires for that node, and only the alerts that should
  const fired = [];
  for (const r of all) {
    if ((await firing(vm, r.expr, "10.0.0.3:8080")).length > 0) fired.push(r.alert);
  }
  assert.ok(fired.includes("TwinmillInfluxWritesFailing"), `fired: ${fired.join(", ")}`);
  for (const a of fired) {
    assert.ok(
      ["TwinmillInfluxWritesFailing", "TwinmillIngestHeldBack"].includes(a),
      `${a} fires when only InfluxDB is down`,
    );
  }
});
