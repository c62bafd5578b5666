/**
 * **cluster-routed-get**: `GET /v1/twins/{id}` over the twins owned by node 1, against node 1
 * (local) and node 2 (routed to node 1 over NATS request/reply), in interleaved rounds (see
 * `cluster.ts`).
 * @module
 */
import { shardOf } from "../src/sharding/shard.ts";
import { type BenchRow, num, verdict } from "./report.ts";
import { wrk, type WrkResult } from "./wrk.ts";
import { cpuMeter, formatCpu, log } from "./proc.ts";
import { median } from "./publishers.ts";
import { type BenchNode, twinVersion } from "./node.ts";
import { waitSettled } from "./cluster_settle.ts";
import { twinIdsOf } from "./cluster_ingest.ts";

/** wrk connections of the routed GET rounds (both paths saturate their node). */
const CONNECTIONS = 200;

/** Required ratio of routed to local GET throughput. */
const ROUTED_TARGET = 0.5;

/** What the routed GET bench runs on and with. */
export interface RoutedGetParams {
  nodes: BenchNode[];
  /** Pids of the NATS servers (their CPU is measured). */
  natsPids: number[];
  /** Node ids, node 1 first. */
  ids: string[];
  shards: number;
  rounds: number;
  /** Publishers of the ingest bench, and the version each of their twins reached. */
  n: number;
  m: number;
  secs: number;
  warmSecs: number;
  at50: boolean;
}

/** Runs the GET rounds on the twins of the ingest bench's last round that node 1 owns. */
export async function benchRoutedGet(p: RoutedGetParams): Promise<BenchRow> {
  const { nodes, natsPids, ids, shards, rounds, n, m, secs, warmSecs, at50 } = p;
  // Routed GET: ownership may have moved during the ingest, so read it again.
  const after = await waitSettled(nodes, ids, shards);
  const twins = twinIdsOf(`r${rounds}`, n).filter((id) =>
    after.shards[shardOf(id, shards)]?.owner === ids[0]
  );
  if (twins.length === 0) throw new Error(`No twin r${rounds}-* is owned by ${ids[0]}`);
  const twinShards = [...new Set(twins.map((id) => shardOf(id, shards)))].sort((a, b) => a - b);
  const paths = twins.map((id) => `/v1/twins/${id}`);
  const local = `${nodes[0].httpUrl}${paths[0]}`;
  const routed = `${nodes[1].httpUrl}${paths[0]}`;
  for (const id of twins) {
    const v = await twinVersion(nodes[1].httpUrl, id);
    if (v !== m) {
      throw new Error(`GET ${nodes[1].httpUrl}/v1/twins/${id}: version ${v}, not ${m}`);
    }
  }
  log(`cluster: GET warm-up (${warmSecs} s each) on ${twins.length} twins owned by ${ids[0]}`);
  await wrk(local, warmSecs, true, paths);
  await wrk(routed, warmSecs, true, paths);
  // Interleaved rounds, medians: one run on this shared 2-core machine varies by ±30 %.
  // Measured at CONNECTIONS connections, where both paths saturate their node; at 50 the
  // routed path is bound by the extra NATS round trip's latency, not by its cost (noted).
  const locals: Array<WrkResult & { cpu: string }> = [];
  const routeds: Array<WrkResult & { cpu: string }> = [];
  const run = (what: string, url: string, pid: number, c: number, owner?: number) =>
    load(what, url, pid, secs, paths, natsPids, c, owner);
  for (let round = 1; round <= rounds; round++) {
    locals.push(await run(`local (node 1), round ${round}`, local, nodes[0].pid, CONNECTIONS));
    routeds.push(
      await run(`routed, round ${round}`, routed, nodes[1].pid, CONNECTIONS, nodes[0].pid),
    );
  }
  const l = median(locals, (x) => x.rps);
  const r = median(routeds, (x) => x.rps);
  const l50 = at50
    ? await run("local (node 1), 50 connections", local, nodes[0].pid, 50)
    : undefined;
  const r50 = at50
    ? await run("routed, 50 connections", routed, nodes[1].pid, 50, nodes[0].pid)
    : undefined;
  const probe = await fetch(routed);
  const probeText = `${probe.status} ${(await probe.text()).slice(0, 200)}`;
  const warnings = nodes.slice(0, 2).flatMap((x, i) =>
    x.logs.filter((line) => /"level":"(warn|error)"/.test(line)).slice(-2)
      .map((line) => `node ${i + 1}: ${line.slice(0, 240)}`)
  );
  const clean = [...locals, ...routeds, ...(l50 && r50 ? [l50, r50] : [])].every((x) =>
    x.non2xx === 0 && x.socketErrors === ""
  );
  const getRatio = r.rps / l.rps;
  return {
    bench: "cluster-routed-get",
    result: `${num(r.rps)} req/s 2xx (GET via node 2, routed to owner node 1)` +
      (clean ? "" : `; ${r.non2xx} non-2xx, socket errors: ${r.socketErrors || "none"}`),
    baseline: `${num(l.rps)} req/s (same GET on owner node 1)`,
    ratio: `${getRatio.toFixed(2)}×`,
    target: verdict(`≥ ${ROUTED_TARGET}×`, getRatio >= ROUTED_TARGET && clean),
    notes: [
      `\`wrk -t2 -c${CONNECTIONS} -d${secs}s\`, each connection reading in turn the ${twins.length} twins ` +
      `r${rounds}-* owned by ${ids[0]} (shards ${
        twinShards.join(", ")
      }), after a ${warmSecs} s warm-up of ` +
      `each; ${rounds} interleaved rounds, medians reported (local ` +
      `${locals.map((x) => num(x.rps)).join(", ")}; routed ` +
      `${routeds.map((x) => num(x.rps)).join(", ")} req/s).`,
      ...(l50 && r50
        ? [
          `at 50 connections (one round): local ${num(l50.rps)}, routed ${num(r50.rps)} ` +
          `req/s (${(r50.rps / l50.rps).toFixed(2)}×; routed latency ${r50.latency}, serving ` +
          `node CPU ${r50.cpu}) — there the routed path waits on the NATS round trip with CPU ` +
          `to spare.`,
        ]
        : []),
      `local (median round): latency ${l.latency}; CPU ${l.cpu}.`,
      `routed (median round): ${num(r.requests)} responses (${r.non2xx} non-2xx, socket errors: ` +
      `${r.socketErrors || "none"}); latency ${r.latency}; CPU ${r.cpu}. GET via node 2 right ` +
      `after: ${probeText}.`,
      ...(clean ? [] : warnings.map((w) => `last warnings: ${w}`)),
    ],
  };
}

/** A measured wrk run with the CPU of the serving node(s). */
async function load(
  what: string,
  url: string,
  pid: number,
  secs: number,
  paths: string[],
  natsPids: number[],
  connections: number,
  ownerPid?: number,
): Promise<WrkResult & { cpu: string }> {
  log(`cluster: GET ${what} (wrk -t2 -c${connections} -d${secs}s ${url})`);
  const pids: Record<string, number> = { "serving node": pid };
  if (ownerPid !== undefined) pids["owner node"] = ownerPid;
  natsPids.forEach((p, i) => (pids[`nats${i + 1}`] = p));
  const cpu = cpuMeter(pids, { "serving node main thread": pid });
  const r = await wrk(url, secs, false, paths, connections);
  const used = formatCpu(cpu.stop());
  log(
    `cluster: GET ${what}: ${num(r.rps)} req/s (2xx), ${r.non2xx} non-2xx, ` +
      `socket errors ${r.socketErrors || "none"}, latency ${r.latency} (${used})`,
  );
  return { ...r, cpu: used };
}
