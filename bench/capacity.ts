/**
 * **capacity** — the per-stage costs behind `bench/CAPACITY.md`, and a check of the model
 * against clusters that fit on this machine.
 *
 * Costs are CPU-seconds (`utime + stime` from `/proc/<pid>/stat`) of each process over a known
 * number of messages, less what the same process used while the devices were connected and
 * silent — a figure that holds on a loaded machine, where throughput does not:
 * - the servers alone (`capacity_raw.ts`): core NATS, JetStream R1 and R3 publish, influxd;
 * - a node in cluster mode under paced devices (`factory_gen.c`, 1 QoS 1 message a second
 *   each, one twin each, so every message also commits a snapshot), at 500 and 1,500 devices:
 *   on 1 nats-server (R1), on a 3-server cluster (R3), and (1,500) on R1 with points written to
 *   influxd; idle CPU, CPU and RSS per connected silent device.
 * Then the check: 1 node on 1 nats-server, 2 and 3 nodes on a 3-server cluster, each under the
 * same offered load (1,000 devices); every node's and nats-server's CPU-seconds predicted from
 * the costs (their silent cores over the run + messages × the cost per message at 1,500/s, and
 * at 500/s for comparison) and measured. Rounds are repeated and medians taken.
 *
 * `deno run -A --unstable-kv bench/capacity.ts [--quick] [--json=FILE]` prints the costs, the
 * check and the table (`capacity_model.ts`); `--json` saves the costs for the model's script.
 * @module
 */
import { type BenchRow, num, verdict } from "./report.ts";
import { cleanup } from "./proc.ts";
import { compileGenerator } from "./factory_gen.ts";
import type { Phase } from "./capacity_load.ts";
import { type RigOptions, type RigResult, runRig } from "./capacity_rig.ts";
import { rawCosts } from "./capacity_raw.ts";
import { costAt, costLines, type Costs, type Line, rows, table } from "./capacity_model.ts";

/** Parameters of the capacity bench. */
export interface CapacityOptions {
  /** Devices of the stage runs (two loads) and of the check runs. Default 1,500, 500, 1,000. */
  devices?: number;
  devicesLow?: number;
  checkDevices?: number;
  /** Messages per device (one a second). Default 12. */
  seconds?: number;
  /** Seconds of each idle reading. Default 2. */
  idleSeconds?: number;
  /** Messages of each raw server measurement. Default 20,000. */
  rawMessages?: number;
  /** Rounds of each run (medians). Default 3. */
  rounds?: number;
  /** Quick form: the R1 stage at one load, no R3, InfluxDB or check runs. */
  quick?: boolean;
}

/** The quick form's parameters (`deno task bench --quick`). */
export const QUICK: CapacityOptions = {
  quick: true,
  devices: 200,
  seconds: 3,
  idleSeconds: 1,
  rawMessages: 2000,
  rounds: 1,
};

/** The model may miss the measured total CPU by at most this share. */
const TOLERANCE = 0.25;
/** RSS per resident twin, KiB: the memory-1m bench (1,000,000 twins, settled, 1,802 B). */
const TWIN_KIB = 1802 / 1024;

const isNode = (k: string) => k.startsWith("node");
const isMain = (k: string) => k.startsWith("main:");
const isNats = (k: string) => k.startsWith("nats");

/** CPU-seconds of phase `p` of the processes (or main threads) passing `keep`. */
function cpuIn(p: Phase, keep: (k: string) => boolean): number {
  return Object.entries(p.cpu).filter(([k]) => keep(k)).reduce((a, [, v]) => a + v, 0);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

/** Runs `o` `n` times. */
async function rounds(o: RigOptions, n: number): Promise<RigResult[]> {
  const out: RigResult[] = [];
  for (let i = 1; i <= n; i++) out.push(await runRig({ ...o, label: `${o.label} ${i}/${n}` }));
  return out;
}

/** `cores` per message of run `r` over its connected-silent use. */
function perMsgOf(r: RigResult, cores: (p: Phase) => number): number {
  return (cores(r.busy) - cores(r.silent) / r.silent.wall * r.busy.wall) / r.acked;
}

/**
 * The CPU of `cores` in runs `lo` (the lower load) and `hi` (the higher load): medians of the
 * silent cores and of the CPU-s per message over them.
 */
function line(lo: RigResult[], hi: RigResult[], cores: (p: Phase) => number): Line {
  const paced = lo.length > 0 ? lo : hi;
  if (paced.length === 0) return { base: NaN, perMsg: NaN, high: NaN };
  return {
    base: median(paced.map((r) => cores(r.silent) / r.silent.wall)),
    perMsg: median(paced.map((r) => perMsgOf(r, cores))),
    high: hi.length > 0 ? median(hi.map((r) => perMsgOf(r, cores))) : NaN,
  };
}

/** CPU-s per message over the silent use, of the processes passing `keep`. */
function overSilent(r: RigResult, keep: (k: string) => boolean): number {
  return (cpuIn(r.busy, keep) - cpuIn(r.silent, keep) / r.silent.wall * r.busy.wall) / r.acked;
}

/**
 * One check: CPU-s of nodes and NATS measured, and predicted with the costs at the check's own
 * rates (per node for the nodes, the cluster's for NATS; `costAt`, the model's check), at the
 * higher load (the table's) and at the lower one.
 */
interface Check {
  nodes: number;
  natsServers: number;
  acked: number;
  wall: number;
  predicted: number;
  predictedHigh: number;
  predictedLow: number;
  measured: number;
}

/** The predictions of run `r` from `c`: silent cores over its time plus its messages' cost. */
function check(c: Costs, r: RigResult): Check {
  const nats = r.natsServers === 1 ? c.natsR1 : c.natsR3;
  const base = (r.nodes * c.node.base + nats.base) * r.busy.wall;
  const rate = r.acked / r.busy.wall;
  const atRate = costAt(c.node, rate / r.nodes, c.rates) + costAt(nats, rate, c.rates);
  return {
    nodes: r.nodes,
    natsServers: r.natsServers,
    acked: r.acked,
    wall: r.busy.wall,
    predicted: base + r.acked * atRate,
    predictedHigh: base + r.acked * (c.node.high + nats.high),
    predictedLow: base + r.acked * (c.node.perMsg + nats.perMsg),
    measured: cpuIn(r.busy, (k) => isNode(k) || isNats(k)),
  };
}

const us = (x: number) => `${(x * 1e6).toFixed(1)} µs`;

/** Measures the costs, then runs the checks. */
export async function measure(o: CapacityOptions = {}) {
  const quick = o.quick ?? false;
  const lo = o.devicesLow ?? 500;
  const hi = o.devices ?? 1500;
  const checkDevices = o.checkDevices ?? 1000;
  const load = { devices: hi, seconds: o.seconds ?? 12, idleSeconds: o.idleSeconds ?? 2 };
  const loLoad = { ...load, devices: lo };
  const n = o.rounds ?? 3;
  const dir = await Deno.makeTempDir({ prefix: "bench-capacity-" });
  try {
    const bin = await compileGenerator(dir);
    const raw = await rawCosts(o.rawMessages ?? 20_000, !quick);
    const base = { bin, nodes: 1, shards: 16, load, influx: false };
    const stage = (label: string, natsServers: 1 | 3, extra: Partial<RigOptions> = {}) =>
      rounds({ ...base, natsServers, label: `capacity: ${label}`, ...extra }, n);
    const r1lo = quick ? [] : await stage(`node R1 ${lo}/s`, 1, { load: loLoad });
    const r1 = await stage(`node R1 ${hi}/s`, 1);
    const r3lo = quick ? [] : await stage(`node R3 ${lo}/s`, 3, { load: loLoad });
    const r3 = quick ? [] : await stage(`node R3 ${hi}/s`, 3);
    const fluxed = quick ? [] : await stage(`node R1+influx ${hi}/s`, 1, { influx: true });
    const m = (rs: RigResult[], f: (r: RigResult) => number) => rs.length ? median(rs.map(f)) : NaN;
    const proc = (keep: (k: string) => boolean) => (p: Phase) => cpuIn(p, keep);
    const busiest = (p: Phase) =>
      Math.max(...Object.entries(p.cpu).filter(([k]) => isNats(k)).map(([, v]) => v));
    const idleRate = (r: RigResult, keep: (k: string) => boolean) =>
      cpuIn(r.idle, keep) / r.idle.wall;
    const costs: Costs = {
      node: line(r1lo, r1, proc(isNode)),
      nodeMain: line(r1lo, r1, proc(isMain)),
      nodeInflux: m(fluxed, (r) => overSilent(r, isNode)) - m(r1, (r) => overSilent(r, isNode)),
      natsR1: line(r1lo, r1, proc(isNats)),
      natsR3: line(r3lo, r3, proc(isNats)),
      natsR3Max: line(r3lo, r3, busiest),
      influxd: m(fluxed, (r) => overSilent(r, (k) => k === "influxd")),
      connCores: m(r1, (r) => (cpuIn(r.silent, isNode) / r.silent.wall - idleRate(r, isNode)) / hi),
      connKiB: m(r1, (r) => (r.rss.node1.connected - r.rss.node1.idle) * 1024 / hi),
      twinKiB: TWIN_KIB,
      nodeIdle: m(r1, (r) => idleRate(r, isNode)),
      natsIdle: m([...r1, ...r3], (r) => idleRate(r, isNats) / r.natsServers),
      rates: quick ? [hi] : [lo, hi],
      raw,
    };
    const measuredTwinKiB = m(r1, (r) => (r.rss.node1.after - r.rss.node1.connected) * 1024 / hi);
    const checks: Check[] = [];
    for (const [nodes, natsServers] of quick ? [] : [[1, 1], [2, 3], [3, 3]] as const) {
      const rs = await stage(`check ${nodes} node(s)`, natsServers as 1 | 3, {
        nodes,
        load: { ...load, devices: checkDevices },
      });
      const cs = rs.map((r) => check(costs, r))
        .sort((a, b) => a.measured / a.predicted - b.measured / b.predicted);
      checks.push(cs[Math.floor((cs.length - 1) / 2)]);
    }
    const runs = { r1lo, r1, r3lo, r3, fluxed }; // every reading, for a later refit
    return { costs, checks, measuredTwinKiB, load, checkDevices, rounds: n, runs };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Markdown lines of the checks. */
export function checkLines(checks: Check[]): string[] {
  return checks.map((c) =>
    `check, ${c.nodes} node(s) on ${c.natsServers} nats-server(s): ${num(c.acked)} messages in ` +
    `${c.wall.toFixed(1)} s (${num(c.acked / c.wall)} msgs/s); nodes + NATS predicted ` +
    `${c.predicted.toFixed(2)} CPU-s with the costs at its rates (${
      us(c.predicted / c.acked)
    } per message; ${c.predictedHigh.toFixed(2)} with the 1,500/s costs, ${
      c.predictedLow.toFixed(2)
    } with the 500/s costs), ` +
    `measured ` +
    `${c.measured.toFixed(2)} (${us(c.measured / c.acked)}): ${
      (c.measured / c.predicted).toFixed(2)
    }×`
  );
}

/** Runs the capacity bench; one row. */
export async function benchCapacity(o: CapacityOptions = {}): Promise<BenchRow> {
  const r = await measure(o);
  const c = r.costs;
  const nats = Number.isFinite(c.natsR3.high)
    ? `NATS R3 ${us(c.natsR3.high)}`
    : `NATS R1 ${us(c.natsR1.high)}`;
  const head = {
    bench: "capacity",
    result: `node ${us(c.node.high)}, ${nats} CPU per message (+ base cores)`,
  };
  const off = (x: Check) => Math.abs(Math.log(x.measured / x.predicted));
  const worst = r.checks.reduce<Check | undefined>(
    (a, x) => a && off(a) >= off(x) ? a : x,
    undefined,
  );
  const verdicts = worst
    ? {
      result: `${head.result}; check: ${worst.nodes} node(s) at ${
        num(worst.acked / worst.wall)
      } msgs/s used ${worst.measured.toFixed(2)} CPU-s`,
      baseline: `${worst.predicted.toFixed(2)} CPU-s predicted by the model (same run)`,
      ratio: `${(worst.measured / worst.predicted).toFixed(2)}× (the check furthest from its ` +
        `prediction)`,
      target: verdict(
        `within ±${TOLERANCE * 100}% for 1-3 nodes`,
        r.checks.every((x) => Math.abs(x.measured / x.predicted - 1) <= TOLERANCE),
      ),
    }
    : { // the quick form: no check run
      result: `${head.result} at ${num(r.load.devices)} msgs/s offered`,
      baseline: `NATS R1 ${us(c.natsR1.perMsg)} per message in the same run (${
        num(r.load.devices)
      } msgs/s)`,
      ratio: `${(c.node.perMsg / c.natsR1.perMsg).toFixed(2)}× (node ÷ NATS, CPU per message)`,
      target: verdict("every message acknowledged and applied (no check run)", true),
    };
  return {
    ...head,
    ...verdicts,
    notes: [
      `${r.rounds} round(s) of each run, medians; the machine is shared (load average in the ` +
      `header): CPU-seconds per message, not throughput. Runs of ${r.load.seconds} messages ` +
      `per device (1/s), 16 shards; every message acknowledged and applied (TM_IN empty).`,
      ...costLines(c),
      `resident twin: ${c.twinKiB.toFixed(2)} KiB (memory-1m full run); this run's rough ` +
      `delta after ${num(r.load.devices)} twins: ${r.measuredTwinKiB.toFixed(2)} KiB`,
      ...checkLines(r.checks),
      ...(Number.isFinite(c.natsR3.perMsg)
        ? [
          `the table for 10k/100k/1M devices: \`bench/capacity.ts --json=FILE\` then ` +
          `\`bench/capacity_model.ts FILE\` (bench/CAPACITY.md); with these costs 10,000 devices ` +
          `at 1 msg/s need ${rows(c)[0].nodes} nodes, ${rows(c)[0].natsServers} NATS servers`,
        ]
        : []),
    ],
  };
}

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  const json = Deno.args.find((a) => a.startsWith("--json="))?.slice("--json=".length);
  try {
    const r = await measure(quick ? QUICK : {});
    console.log(costLines(r.costs).map((l) => `- ${l}`).join("\n"));
    console.log(checkLines(r.checks).map((l) => `- ${l}`).join("\n") + "\n");
    if (Number.isFinite(r.costs.natsR3.perMsg)) console.log(table(rows(r.costs)));
    if (json) await Deno.writeTextFile(json, JSON.stringify(r, null, 2) + "\n");
  } finally {
    await cleanup();
  }
}
