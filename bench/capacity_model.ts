/**
 * The capacity model: measured per-stage costs (`capacity.ts`) turned into the machines a plant
 * needs — twinmill nodes, NATS servers, InfluxDB — for a number of devices at a message rate,
 * with the first bottleneck of each row. Pure arithmetic, no measuring:
 *
 * ```sh
 * deno run -A --unstable-kv bench/capacity.ts --json=/tmp/costs.json   # measure (≈ 4 min)
 * deno run -A bench/capacity_model.ts /tmp/costs.json [--node-cores=2 --target=0.6 …]
 * ```
 * prints the Markdown table of `bench/CAPACITY.md` for those costs and assumptions.
 * @module
 */
import type { RawCosts } from "./capacity_raw.ts";

/**
 * CPU of a process (or group): `base` cores while the devices are connected and silent, plus
 * CPU-seconds per message at the lower load (`perMsg`, 500 msgs/s) and at the higher one
 * (`high`, 1,500 msgs/s). A message costs less the more messages a second there are: JetStream
 * publishes, consumer fetches and RAFT appends carry more messages each (NATS R3 costs 4× less
 * a message at 1,500 than at 500 msgs/s here), so the higher load's costs are the ones to plan
 * nodes that run near their target with, and still an upper bound for busier ones.
 */
export interface Line {
  base: number;
  perMsg: number;
  high: number;
}

/**
 * CPU-s per message of `l` at `rate` messages a second, between the two measured loads `rates`:
 * interpolated on log-log scales (a power of the rate through both), the nearer load's cost
 * outside them.
 *
 * @example
 * ```ts
 * costAt({ base: 0, perMsg: 400e-6, high: 100e-6 }, 1000, [500, 2000]); // 200e-6
 * ```
 */
export function costAt(l: Line, rate: number, rates: number[]): number {
  const [lo, hi] = rates;
  if (!(hi > lo)) return l.high;
  const r = Math.min(hi, Math.max(lo, rate));
  return l.perMsg * (l.high / l.perMsg) ** (Math.log(r / lo) / Math.log(hi / lo));
}

/** CPU-s per message of `l`: at the lower load (`low`) or at the higher one. */
export const perMsgOf = (l: Line, low: boolean) => low ? l.perMsg : l.high;

/** Measured costs: CPU lines, CPU-seconds per point, KiB. */
export interface Costs {
  /** A node process in cluster mode (R3): MQTT in, TM_IN, apply, snapshot commit, PUBACK. */
  node: Line;
  /** Its main (JavaScript) thread. */
  nodeMain: Line;
  /** Node CPU-s per message added by writing the message's point to InfluxDB. */
  nodeInflux: number;
  /** The nats-server in the pipeline of one node, R1 (one server). */
  natsR1: Line;
  /** The same on a 3-server JetStream cluster (R3), summed over the 3 servers. */
  natsR3: Line;
  /** The busiest of those 3 servers (leader of a stream, of the bucket or of consumers). */
  natsR3Max: Line;
  /** influxd CPU-s per point written by a node. */
  influxd: number;
  /** Node cores per connected, silent device (noisy: near zero). */
  connCores: number;
  /** Node RSS per connected device, KiB. */
  connKiB: number;
  /** Node RSS per resident twin, KiB. */
  twinKiB: number;
  /** Cores of an idle node, of an idle nats-server. */
  nodeIdle: number;
  natsIdle: number;
  /** The offered loads the lines were fitted through, messages a second. */
  rates: number[];
  /** The servers alone (`capacity_raw.ts`). */
  raw: RawCosts;
}

/** What the table assumes about the machines. */
export interface Assumptions {
  /** Cores and memory of a node machine (one node process each). */
  nodeCores: number;
  nodeGiB: number;
  /** Cores of a NATS server machine. */
  natsCores: number;
  /** Cores of the InfluxDB machine. */
  influxCores: number;
  /** Share of CPU (and of a node's main thread, and of memory) to plan for. */
  target: number;
  /** Plan with the costs at the lower load (dearer); else with the higher load's. */
  low: boolean;
}

/** The assumptions of `bench/CAPACITY.md`. */
export const DEFAULT_ASSUMPTIONS: Assumptions = {
  nodeCores: 2,
  nodeGiB: 8,
  natsCores: 4,
  influxCores: 8,
  target: 0.6,
  low: false,
};

/** One row of the table. */
export interface Row {
  devices: number;
  rate: number;
  msgs: number;
  nodes: number;
  /** What sets the node count: `cpu`, `main thread`, `memory` or `minimum`. */
  nodesBy: string;
  natsServers: number;
  /** Nodes with the other costs (at the lower load, or the higher), for the spread. */
  nodesOther: number;
  /**
   * Groups of 3 NATS servers needed (1: today's design, where every message goes through one
   * stream, `TM_IN`, and one bucket, `tm_twins`, both on the same 3 servers).
   */
  groups: number;
  influx: number;
  /** Load on one unit of the tiers that do not scale out (1 = its target reached). */
  use: Record<string, number>;
  bottleneck: string;
}

const ceil = (x: number) => Math.max(1, Math.ceil(x - 1e-9));

/**
 * The machines for `devices` at `rate` messages a second each; with `other`, also the node
 * count with the other costs (at the lower load, or the higher).
 */
export function plan(
  c: Costs,
  a: Assumptions,
  devices: number,
  rate: number,
  other = true,
): Row {
  const msgs = devices * rate;
  const x = (l: Line) => perMsgOf(l, a.low);
  const perMsg = x(c.node) + c.nodeInflux;
  const conn = Math.max(0, c.connCores);
  // messages a second one node takes at the target: its process, its main thread
  const mainShare = x(c.nodeMain) / x(c.node);
  const perNodeCpu = (a.nodeCores * a.target - c.node.base) / perMsg;
  const perNodeMain = (a.target - c.nodeMain.base) / (perMsg * mainShare);
  const perNodeDevices = a.nodeGiB * 1024 * 1024 * a.target / (c.twinKiB + c.connKiB);
  const byCpu = (msgs + devices * conn / perMsg) / perNodeCpu;
  const byMain = (msgs + devices * conn / perMsg) / perNodeMain;
  const byMem = devices / perNodeDevices;
  const need = { cpu: byCpu, "main thread": byMain, memory: byMem, minimum: 2 };
  const [nodesBy, nodesF] = Object.entries(need).sort((x, y) => y[1] - x[1])[0];
  const nodes = ceil(nodesF);
  // every message goes through TM_IN and tm_twins, which live on the same 3 servers: the
  // busiest of them bounds what one group of 3 takes
  const busiest = (c.natsR3Max.base + x(c.natsR3Max) * msgs) / (a.natsCores * a.target);
  const groups = ceil(busiest);
  const natsServers = 3 * groups;
  const influxNeed = msgs * c.influxd / (a.influxCores * a.target);
  const influx = ceil(influxNeed);
  // what one unit of the tiers that do not scale out today would carry: one group of 3 NATS
  // servers (its busiest server), one InfluxDB (1.x OSS has no clustering)
  const use: Record<string, number> = {
    "busiest NATS server": busiest,
    "InfluxDB": influxNeed,
  };
  const [fixed, most] = Object.entries(use).sort((x, y) => y[1] - x[1])[0];
  const bottleneck = most > 1
    ? `${fixed} (${most.toFixed(1)}× its target)`
    : `node ${
      nodesBy === "minimum" ? "count (minimum 2)" : nodesBy
    } (nodes scale out); then ${fixed} at ${Math.round(most * 100)}% of its target`;
  const nodesOther = other ? plan(c, { ...a, low: !a.low }, devices, rate, false).nodes : NaN;
  return {
    devices,
    rate,
    msgs,
    nodes,
    nodesBy,
    nodesOther,
    natsServers,
    groups,
    influx,
    use,
    bottleneck,
  };
}

/** The table's rows: 10k, 100k and 1M devices at 1 and 10 messages a second. */
export function rows(c: Costs, a: Assumptions = DEFAULT_ASSUMPTIONS): Row[] {
  return [10_000, 100_000, 1_000_000].flatMap((d) => [1, 10].map((r) => plan(c, a, d, r)));
}

const n = (x: number) => x.toLocaleString("en-US");

/** The Markdown table of `rows`. */
export function table(rs: Row[], a: Assumptions = DEFAULT_ASSUMPTIONS): string {
  const head = "| devices | msg/s each | msgs/s | nodes (set by) | NATS servers | InfluxDB | " +
    "first bottleneck |\n| --- | --- | --- | --- | --- | --- | --- |";
  return [
    head,
    ...rs.map((r) => {
      const nats = r.groups === 1
        ? `${r.natsServers}`
        : `${r.natsServers} (${r.groups} groups of 3: not supported yet)`;
      const influx = r.influx === 1 ? "1" : `${r.influx} (sharded by device: not supported yet)`;
      return `| ${n(r.devices)} | ${r.rate} | ${n(r.msgs)} | ${n(r.nodes)} (${r.nodesBy}; ${
        a.low ? "at 1,500/s costs" : "at 500/s costs"
      }: ${n(r.nodesOther)}) | ` +
        `${nats} | ${influx} | ${r.bottleneck} |`;
    }),
    "",
    `Machines: node ${a.nodeCores} cores / ${a.nodeGiB} GiB (one node process), NATS server ` +
    `${a.natsCores} cores, InfluxDB ${a.influxCores} cores; planned at ${
      a.target * 100
    }% of CPU, ` +
    `of a node's main thread and of its memory.`,
  ].join("\n");
}

/** The per-stage costs as Markdown lines (µs per message, cores, KiB). */
export function costLines(c: Costs): string[] {
  const us = (x: number) => Number.isFinite(x) ? `${(x * 1e6).toFixed(1)} µs` : "not measured";
  const line = (l: Line) =>
    Number.isFinite(l.perMsg)
      ? `${us(l.high)} per message at ${hi}/s (${us(l.perMsg)} at ${lo}/s) + ${
        l.base.toFixed(2)
      } cores`
      : "not measured";
  const at = c.rates.map((r) => r.toLocaleString("en-US")).join(" and ");
  const [lo, hi] = c.rates.length > 1 ? c.rates : [c.rates[0], c.rates[0]];
  return [
    `node (cluster mode; ${at} msgs/s offered): ${line(c.node)}; main thread ${
      line(c.nodeMain)
    }; writing points to InfluxDB adds ${us(c.nodeInflux)} per message; idle node ${
      c.nodeIdle.toFixed(3)
    } cores`,
    `NATS in one node's pipeline: R1 ${line(c.natsR1)}; R3 ${
      line(c.natsR3)
    } (3 servers summed; busiest ${line(c.natsR3Max)}); idle nats-server ${
      c.natsIdle.toFixed(3)
    } cores`,
    `nats-server alone: core pub→sub ${us(c.raw.natsCore)}, JetStream publish R1 ${
      us(c.raw.jsR1)
    }, R3 ${us(c.raw.jsR3)} (busiest ${us(c.raw.jsR3Max)}) per message`,
    `InfluxDB: ${us(c.influxd)} per point written by a node; ${
      us(c.raw.influxPoint)
    } per point in 5,000-point writes`,
    `connected silent device: ${(c.connCores * 1e6).toFixed(1)} µs CPU per second (noise level), ${
      c.connKiB.toFixed(1)
    } KiB RSS; resident twin ${c.twinKiB.toFixed(2)} KiB RSS`,
  ];
}

if (import.meta.main) {
  const [file, ...flags] = Deno.args;
  if (!file) {
    console.error(
      "usage: bench/capacity_model.ts COSTS.json [--node-cores=N --node-gib=N " +
        "--nats-cores=N --influx-cores=N --target=0.6 --low=1]",
    );
    Deno.exit(2);
  }
  const a = { ...DEFAULT_ASSUMPTIONS };
  const keys: Record<string, keyof Assumptions> = {
    "node-cores": "nodeCores",
    "node-gib": "nodeGiB",
    "nats-cores": "natsCores",
    "influx-cores": "influxCores",
    target: "target",
    low: "low",
  };
  for (const f of flags) {
    const m = f.match(/^--([a-z-]+)=(.+)$/);
    if (!m || !(m[1] in keys)) throw new Error(`Unknown option ${f}`);
    const k = keys[m[1]];
    if (k === "low") a.low = m[2] === "1" || m[2] === "true";
    else a[k] = Number(m[2]);
  }
  // a file written by `capacity.ts --json` (costs, checks, …) or the costs alone
  const saved = JSON.parse(await Deno.readTextFile(file));
  const c = (saved.costs ?? saved) as Costs;
  console.log(costLines(c).map((l) => `- ${l}`).join("\n") + "\n");
  console.log(table(rows(c, a), a));
}
