/**
 * **balance** — shards per node of a real cluster (`GET /v1/cluster` once settled), 64 shards
 * on one nats-server (JetStream): 3 nodes, then a 4th joins, (full run: a 5th joins, and
 * leaves again; quick run: the 4th leaves again). Result: shards per node on 3 (and 5) nodes;
 * baseline: what plain rendezvous hashing (the placement before bounded load) gives the same
 * node ids; ratio: the worst max/min seen; target ≤ 1.15×. The notes give the moves of each
 * join and leave (shards whose owner changed between the settled views) against the fewest
 * possible: the shards the joining node gets, or the shards the leaving node had.
 * @module
 */
import { startNats } from "../tests/harness/mod.ts";
import { owners, plainOwners } from "../src/sharding/placement.ts";
import { type BenchRow, verdict } from "./report.ts";
import { log, trackDisposable } from "./proc.ts";
import { type BenchNode, startClusterNodes } from "./node.ts";
import { type ClusterView, waitSettled } from "./cluster_settle.ts";

/** Parameters of the balance bench. */
export interface BalanceOptions {
  /** `TWINMILL_SHARDS`. Default 64. */
  shards?: number;
  /** Also 5 nodes (a 5th joins after the 4th, then leaves). Default true. */
  five?: boolean;
}

/** The target: max/min shards per node. */
const TARGET = 1.15;

/** Shards per node in `ids` order. */
const perNode = (owner: readonly (string | null)[], ids: string[]) =>
  ids.map((id) => owner.filter((o) => o === id).length);

/** max/min of counts (Infinity when a node has none). */
const spread = (counts: number[]) => Math.max(...counts) / Math.min(...counts);

/** Owner of each shard in a settled view. */
const ownersOf = (v: ClusterView) =>
  [...v.shards].sort((a, b) => a.shard - b.shard).map((s) => s.owner);

/** A join or a leave, as measured. */
interface Move {
  what: string;
  moved: number;
  fewest: number;
  ms: number;
}

/** Runs the balance bench on a fresh nats-server and 3–5 nodes. */
export async function benchBalance(o: BalanceOptions = {}): Promise<BenchRow> {
  const shards = o.shards ?? 64;
  const five = o.five ?? true;
  log("balance: starting nats-server (JetStream)");
  const nats = trackDisposable("nats", await startNats({ jetstream: true }));
  const nodes: BenchNode[] = [];
  const ids = ["bench-1", "bench-2", "bench-3"];
  try {
    log(`balance: starting 3 nodes (${shards} shards)`);
    nodes.push(...await startClusterNodes(nats.url, ids, shards));
    let view = ownersOf(await waitSettled(nodes, ids, shards));
    const three = perNode(view, ids);
    const moves: Move[] = [];
    const change = async (what: string, fewest: (before: readonly (string | null)[]) => number) => {
      const before = view;
      const t0 = performance.now();
      view = ownersOf(await waitSettled(nodes, ids, shards));
      const moved = view.filter((o, s) => o !== before[s]).length;
      const m = { what, moved, fewest: fewest(before), ms: performance.now() - t0 };
      log(`balance: ${what}: ${moved} shards moved (fewest possible ${m.fewest})`);
      moves.push(m);
    };
    const join = async (id: string) => {
      nodes.push(...await startClusterNodes(nats.url, [id], shards));
      ids.push(id);
      await change(`${id} joins`, () => view.filter((o) => o === id).length);
    };
    const leave = async () => {
      const id = ids.pop()!;
      await nodes.pop()!.kill("SIGTERM");
      await change(`${id} leaves`, (before) => before.filter((o) => o === id).length);
    };
    await join("bench-4");
    let fiveNodes: number[] | undefined;
    if (five) {
      await join("bench-5");
      fiveNodes = perNode(view, ids);
    }
    const idsAtMost = [...ids];
    await leave();
    const placed = owners(shards, ids);
    const asComputed = view.every((o, s) => o === placed[s]);
    const hrw3 = perNode(plainOwners(shards, idsAtMost.slice(0, 3)), idsAtMost.slice(0, 3));
    const hrw5 = perNode(plainOwners(shards, idsAtMost), idsAtMost);
    const worst = Math.max(spread(three), fiveNodes ? spread(fiveNodes) : 0);
    return {
      bench: "balance",
      result: `${three.join("/")} shards on 3 nodes` +
        (fiveNodes ? `, ${fiveNodes.join("/")} on 5` : ""),
      baseline: `plain HRW ${hrw3.join("/")} shards (${spread(hrw3).toFixed(2)}×)` +
        (fiveNodes ? `, ${hrw5.join("/")} (${spread(hrw5).toFixed(2)}×)` : ""),
      ratio: `${worst.toFixed(2)}× max/min`,
      target: verdict(`≤ ${TARGET}× max/min`, worst <= TARGET),
      notes: [
        `${shards} shards, 1 nats-server (R1), nodes ${idsAtMost.join(", ")}; moves (shards ` +
        `whose owner changed between settled \`/v1/cluster\` views; fewest possible = the ` +
        `joiner's new shards or the leaver's shards): ` +
        moves.map((m) =>
          `${m.what}: ${m.moved} (fewest ${m.fewest}; settled ${
            (m.ms / 1000).toFixed(1)
          } s after ` +
          `${m.what.endsWith("joins") ? "it was up" : "it exited"})`
        ).join("; ") + ".",
        `Final owners ${asComputed ? "equal" : "DIFFER from"} \`owners(${shards}, nodes)\` of ` +
        `src/sharding/placement.ts; baseline = plain rendezvous hashing (before bounded load) ` +
        `for the same node ids, computed.`,
      ],
    };
  } finally {
    for (const x of nodes.reverse()) await x.dispose();
    await nats[Symbol.asyncDispose]();
  }
}
