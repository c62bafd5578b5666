/**
 * The Grafana dashboard (`infra/grafana/dashboards/twinmill.json`) kept honest against a real
 * node: every metric its Prometheus queries name is in the node's `/metrics`, every label
 * they use exists on those metrics, every query evaluates (VictoriaMetrics, a PromQL engine,
 * over the node's scraped samples), and the per-device InfluxQL queries return the telemetry
 * and alarms a device produced through `mosquitto_pub` (real influxd). Grafana itself cannot
 * run here.
 */
import assert from "node:assert/strict";
import {
  getJson,
  publishQos1,
  REPO_ROOT,
  startInfluxd,
  startNode,
  startVictoriaMetrics,
  waitFor,
} from "../harness/mod.ts";
import { declaredLabels, importScrape, labelsIn, metricsIn, scrape } from "./promql.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

const DASHBOARD = `${REPO_ROOT}/infra/grafana/dashboards/twinmill.json`;
const PROM_UID = "twinmill-prometheus";
const INFLUX_UID = "twinmill-influxdb";

interface Query {
  panel: string;
  uid: string;
  text: string;
}

/** Every query of the dashboard: panel targets and template variables. */
function queries(d: Json): Query[] {
  const out: Query[] = [];
  for (const p of d.panels) {
    for (const t of p.targets ?? []) {
      const uid = t.datasource?.uid ?? p.datasource?.uid;
      out.push({ panel: p.title, uid, text: uid === PROM_UID ? t.expr : t.query });
    }
  }
  for (const v of d.templating.list) {
    const text = typeof v.query === "string" ? v.query : v.query.query;
    out.push({ panel: `variable ${v.name}`, uid: v.datasource.uid, text });
  }
  return out;
}

/** Grafana's variables, as it would expand them for one node and one device. */
function expand(q: string, device: string): string {
  return q.replaceAll("$__rate_interval", "1m").replaceAll("$__range", "1h")
    .replaceAll("$__interval", "10s").replaceAll("$node", ".*").replaceAll("$device", device)
    .replaceAll("$timeFilter", "time > now() - 1h");
}

Deno.test("dashboard: valid Grafana JSON with the fleet, node, writer, cluster and device rows", async () => {
  const d = JSON.parse(await Deno.readTextFile(DASHBOARD));
  assert.equal(d.uid, "twinmill-overview");
  assert.ok(d.schemaVersion >= 36 && d.schemaVersion <= 41, `schemaVersion ${d.schemaVersion}`);
  const rows = d.panels.filter((p: Json) => p.type === "row").map((p: Json) => p.title);
  assert.deepEqual(rows, [
    "Fleet",
    "Node health",
    "InfluxDB writer",
    "Cluster",
    "Device $device (InfluxDB)",
  ]);
  const ids = d.panels.map((p: Json) => p.id);
  assert.equal(new Set(ids).size, ids.length, "panel ids are unique");
  for (const p of d.panels) {
    assert.ok(p.gridPos.x >= 0 && p.gridPos.x + p.gridPos.w <= 24, `${p.title} fits the grid`);
    if (p.type !== "row") assert.ok(p.targets?.length > 0, `${p.title} has a query`);
  }
  const vars = Object.fromEntries(d.templating.list.map((v: Json) => [v.name, v]));
  assert.equal(vars.node.datasource.uid, PROM_UID);
  assert.match(vars.node.query.query, /^label_values\(twinmill_\w+\{job="twinmill"\}, instance\)$/);
  assert.equal(vars.device.datasource.uid, INFLUX_UID);
  assert.match(
    vars.device.query,
    /^SHOW TAG VALUES FROM "telemetry" WITH KEY = "device" LIMIT \d+$/,
  );
  // every Prometheus query is scoped to the selected nodes
  for (const q of queries(d).filter((q) => q.uid === PROM_UID && !q.panel.startsWith("variable"))) {
    if (/\bup\{/.test(q.text)) continue;
    for (const sel of q.text.matchAll(/\b(twinmill_\w+)\{([^}]*)\}/g)) {
      assert.match(sel[2], /job="twinmill",instance=~"\$node"/, `${q.panel}: ${sel[1]}`);
    }
  }
});

Deno.test("dashboard: its queries read what a real node and InfluxDB hold", async () => {
  const d = JSON.parse(await Deno.readTextFile(DASHBOARD));
  await using influx = await startInfluxd();
  await using vm = await startVictoriaMetrics();
  await using node = await startNode({ INFLUX_URL: influx.url, INFLUX_API: "v1" });

  // a device with a profile: telemetry, an alarm raised and cleared, one rejected message
  const put = (path: string, body: unknown) =>
    getJson(`${node.httpUrl}${path}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  assert.equal((await put("/v1/twins/press-7", { attributes: { type: "press" } })).status, 201);
  const rule = {
    id: "overheat",
    kind: "threshold",
    field: "temp",
    op: ">",
    value: 80,
    clear: 75,
    severity: "critical",
  };
  assert.ok((await put("/v1/profiles/press", { rules: [rule] })).status < 300);
  for (
    const m of [
      '{"temp":21.5,"rpm":1200,"running":true}',
      '{"temp":91}',
      '{"temp":70,"mode":"auto"}',
    ]
  ) {
    const r = await publishQos1(node, "twins/press-7/telemetry", m);
    assert.equal(r.code, 0, r.stderr);
  }
  await publishQos1(node, "twins/press-7/telemetry", "not json");
  await waitFor(async () => {
    const r = await influx.query(`SELECT count("state") FROM "alarms"`, "twinmill");
    return r.results[0].series?.[0].values[0][1] >= 2;
  }, { message: "the alarm's raise and clear in InfluxDB" });

  const scraped = await scrape(node);
  const { names, labels: sampleLabels } = scraped;
  const declared = await declaredLabels();
  assert.ok(declared.get("twinmill_alarm_transitions_total")?.includes("severity"));

  const prom = queries(d).filter((q) => q.uid === PROM_UID);
  const influxQs = queries(d).filter((q) => q.uid === INFLUX_UID);
  assert.equal(
    prom.length + influxQs.length,
    queries(d).length,
    "only the two provisioned datasources",
  );
  assert.ok(
    prom.length >= 30 && influxQs.length === 4,
    `${prom.length} PromQL, ${influxQs.length} InfluxQL`,
  );

  // every metric and label the PromQL queries name exists on the node
  for (const q of prom) {
    const used = metricsIn(q.text);
    assert.ok(used.length > 0, `${q.panel}: ${q.text}`);
    const base = (n: string) => n.replace(/_(bucket|sum|count)$/, "");
    const allowed = new Set(["job", "instance", "le"]);
    for (const n of used) {
      if (n === "up") continue; // Prometheus's own per-target series
      assert.ok(names.has(n), `${q.panel}: metric ${n} is not in the node's /metrics`);
      for (const l of declared.get(base(n)) ?? declared.get(n) ?? []) allowed.add(l);
      for (const l of sampleLabels.get(n) ?? []) allowed.add(l);
    }
    const labels = labelsIn(q.text);
    for (const l of labels) {
      assert.ok(allowed.has(l), `${q.panel}: label "${l}" on ${used.join(", ")}`);
    }
  }

  // the node's samples in a PromQL engine, labelled as Prometheus's DNS SD job labels them
  await importScrape(vm, scraped);
  for (const q of prom) {
    // Grafana's label_values(selector, label): the selector must find series with that label
    const lv = /^label_values\((.*), (\w+)\)$/.exec(q.text);
    const r = await vm.query(expand(lv ? lv[1] : q.text, "press-7"));
    if (lv) assert.ok(r.data.result.some((s: Json) => s.metric[lv[2]]), `${q.panel}: no ${lv[2]}`);
    assert.equal(r.status, "success", `${q.panel}: ${q.text}: ${JSON.stringify(r)}`);
    // a plain selection of gauges finds the node's series: the matchers fit its labels
    if (!/rate\(|increase\(|\bup\{|histogram_quantile/.test(q.text)) {
      assert.ok(r.data.result.length > 0, `${q.panel}: ${q.text} selects nothing`);
    }
  }

  // the per-device panels and the device variable, on the data the device produced
  const run = async (q: Query) => {
    const r = await influx.query(expand(q.text, "press-7"), "twinmill");
    const res0 = r.results[0];
    assert.equal(res0.error, undefined, `${q.panel}: ${q.text}: ${res0.error}`);
    assert.ok(res0.series?.length > 0, `${q.panel}: ${q.text} returned nothing`);
    return res0.series[0];
  };
  const byPanel = (p: string) => influxQs.find((q) => q.panel.startsWith(p))!;
  const devices = await run(byPanel("variable device"));
  assert.ok(devices.values.some((v: string[]) => v[1] === "press-7"), JSON.stringify(devices));
  const series = await run(byPanel("Telemetry of"));
  for (const c of ["mean_temp", "mean_rpm"]) assert.ok(series.columns.includes(c), series.columns);
  const latest = await run(byPanel("Latest values"));
  const row = Object.fromEntries(
    latest.columns.map((c: string, i: number) => [c, latest.values[0][i]]),
  );
  assert.equal(row.last_temp, 70);
  assert.equal(row.last_running, true);
  assert.equal(row.last_mode, "auto");
  const alarms = await run(byPanel("Alarm changes"));
  const rows = alarms.values.map((v: unknown[]) =>
    Object.fromEntries(alarms.columns.map((c: string, i: number) => [c, v[i]]))
  );
  assert.ok(
    rows.length >= 2 && rows.every((r: Json) => r.rule === "overheat" && r.severity === "critical"),
  );
  // InfluxDB trims trailing zeros from RFC 3339 times ("…:05.1Z", "…:05.12Z"): compare instants, not strings
  const instant = (r: Json) => Date.parse(r.time as string);
  assert.ok(instant(rows[0]) >= instant(rows.at(-1)), `newest first: ${JSON.stringify(rows)}`);
  assert.equal(rows[0].state, "cleared");
});
