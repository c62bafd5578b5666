import assert from "node:assert/strict";
import { expectedRows, quickRunProblems } from "./quick_check.ts";
import { type BenchRow, document, type Environment } from "./report.ts";

const env: Environment = {
  date: "2026-12-07T19:00:00Z",
  deno: "deno 2.9.0",
  cpu: "Test CPU, 2 cores",
  memory: "4.0 GiB",
  servers: "nats-server 2.9.25, mosquitto 2.0.18, influxd 1.8.10, wrk 4.2.0",
  loadBefore: "0.10, 0.20, 0.30",
  loadAfter: "0.40, 0.50, 0.60",
  quick: true,
  duration: "`--quick`, ingest, cluster in 20 s",
};

const row = (bench: string): BenchRow => ({
  bench: `${bench} (quick)`,
  result: "12,345 msgs/s",
  baseline: "20,000 msgs/s",
  ratio: "0.62×",
  target: "≥ 0.6× (met)",
  notes: [],
});

Deno.test("bench quick check: the ingest and cluster benches give two rows, every other bench one", () => {
  assert.deepEqual(expectedRows(["ingest", "cluster", "fanout"]), [
    "ingest",
    "ingest-default",
    "cluster-ingest",
    "cluster-routed-get",
    "fanout",
  ]);
});

Deno.test("bench quick check: a complete quick run passes", () => {
  const rows = expectedRows(["ingest", "cluster"]).map(row);
  assert.deepEqual(quickRunProblems(document(rows, env), ["ingest", "cluster"]), []);
});

Deno.test("bench quick check: a missing row, a failed bench and a full run's title are reported", () => {
  const failed = { ...row("cluster-ingest"), result: "failed", ratio: "-", target: "-" };
  const doc = document([row("ingest"), row("ingest-default"), failed], { ...env, quick: false });
  assert.deepEqual(quickRunProblems(doc, ["ingest", "cluster"]), [
    "the document is not titled as a quick run",
    'rows ["ingest (quick)","ingest-default (quick)","cluster-ingest (quick)"], expected ' +
    '["ingest (quick)","ingest-default (quick)","cluster-ingest (quick)",' +
    '"cluster-routed-get (quick)"]',
    'cluster-ingest (quick): no figure in result "failed"',
    'cluster-ingest (quick): no ratio in "-"',
    'cluster-ingest (quick): no verdict in target "-"',
  ]);
});

Deno.test("bench quick check: a latency in ms is a figure", () => {
  const factory = {
    ...row("factory"),
    result: "PUBACK p99 12.5 ms, p50 1.20 ms",
    baseline: "p99 3.40 ms (mosquitto)",
  };
  assert.deepEqual(quickRunProblems(document([factory], env), ["factory"]), []);
});

Deno.test("bench quick check: shards per node are a figure (the balance row)", () => {
  const balance = {
    ...row("balance"),
    result: "22/21/21 shards on 3 nodes",
    baseline: "plain HRW 24/22/18 shards (1.33×)",
    ratio: "1.05× max/min",
    target: "≤ 1.15× max/min (met)",
  };
  assert.deepEqual(quickRunProblems(document([balance], env), ["balance"]), []);
});
