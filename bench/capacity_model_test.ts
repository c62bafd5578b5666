import assert from "node:assert/strict";
import { costAt, type Costs, DEFAULT_ASSUMPTIONS, plan, rows, table } from "./capacity_model.ts";

const line = (high: number, base = 0) => ({ base, perMsg: high * 2, high });

/** Round numbers: a node's main thread takes 100 µs a message, its process 200 µs. */
const costs: Costs = {
  node: line(200e-6, 0.1),
  nodeMain: line(100e-6, 0.1),
  nodeInflux: 0,
  natsR1: line(50e-6),
  natsR3: line(150e-6),
  natsR3Max: line(60e-6),
  influxd: 10e-6,
  connCores: 0,
  connKiB: 30,
  twinKiB: 2,
  nodeIdle: 0.05,
  natsIdle: 0.01,
  rates: [500, 1500],
  raw: { natsCore: 1e-6, jsR1: 1e-5, jsR3: 5e-5, jsR3Max: 2e-5, influxPoint: 7e-6 },
};

Deno.test("plan: the main thread sets the node count: (60% − base) ÷ cost per message", () => {
  // one node: (0.6 − 0.1) / 100 µs = 5,000 msgs/s on its main thread; its process
  // (2 × 0.6 − 0.1) / 200 µs = 5,500: 100,000 msgs/s need 20 nodes
  const r = plan(costs, DEFAULT_ASSUMPTIONS, 100_000, 1);
  assert.deepEqual([r.nodes, r.nodesBy], [20, "main thread"]);
  // at the lower load's costs (twice as dear) 40 would be needed
  assert.deepEqual(r.nodesOther, 40);
});

Deno.test("plan: NATS groups and InfluxDB instances from the busiest server and the points", () => {
  // busiest server: 60 µs × 100,000 = 6 cores, a 4-core server at 60% takes 2.4: 3 groups
  const r = plan(costs, DEFAULT_ASSUMPTIONS, 100_000, 1);
  assert.deepEqual([r.groups, r.natsServers], [3, 9]);
  // 100,000 points × 10 µs = 1 core of the 8 × 60% of one InfluxDB
  assert.deepEqual(r.influx, 1);
  assert.match(r.bottleneck, /^busiest NATS server \(2\.5× its target\)$/);
});

Deno.test("plan: small plants get the minimum of 2 nodes and one group of 3 NATS servers", () => {
  const r = plan(costs, DEFAULT_ASSUMPTIONS, 1_000, 1);
  assert.deepEqual([r.nodes, r.nodesBy, r.natsServers, r.influx], [2, "minimum", 3, 1]);
  assert.match(r.bottleneck, /^node count \(minimum 2\)/);
});

Deno.test("plan: memory sets the count when twins and connections outgrow the RAM", () => {
  const heavy = { ...costs, connKiB: 4_000 }; // 8 GiB × 60% ÷ 4,002 KiB ≈ 1,258 devices a node
  const r = plan(heavy, DEFAULT_ASSUMPTIONS, 100_000, 0.01);
  assert.deepEqual([r.nodes, r.nodesBy], [80, "memory"]);
});

Deno.test("table: one row per plant size and rate, with the assumptions under it", () => {
  const md = table(rows(costs));
  assert.deepEqual(md.split("\n").filter((l) => /^\| [\d,]+ \|/.test(l)).length, 6);
  assert.match(md, /node 2 cores \/ 8 GiB/);
});

Deno.test("costAt: a power of the rate through both loads, the nearer load's cost outside", () => {
  const l = { base: 0, perMsg: 400e-6, high: 100e-6 };
  const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} ≠ ${b}`);
  close(costAt(l, 500, [500, 2000]), 400e-6);
  close(costAt(l, 1000, [500, 2000]), 200e-6); // halfway on the log scale
  close(costAt(l, 2000, [500, 2000]), 100e-6);
  close(costAt(l, 100, [500, 2000]), 400e-6);
  close(costAt(l, 9000, [500, 2000]), 100e-6);
  close(costAt(l, 1000, [1500]), 100e-6); // one load only: its cost
});
