/**
 * Placement across a rolling upgrade: plain rendezvous hashing while a node of the version
 * before bounded load is live (so no shard is left wanted by nobody), bounded load once none
 * is; the records are read again when the live set changes or after `refreshMs`.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../runtime/clock.ts";
import { owners, plainOwners } from "../sharding/placement.ts";
import { PLACEMENT, upgradePlacement } from "./upgrade_placement.ts";

const SHARDS = 64;
const IDS = ["bench-1", "bench-2", "bench-3"];

/** Membership with `records` (id → announces bounded) and a count of record reads. */
function membership(records: Map<string, boolean>) {
  const m = {
    reads: 0,
    liveNodes: () => Promise.resolve([...records.keys()]),
    nodes: () => {
      m.reads++;
      return Promise.resolve(
        [...records].map(([id, b]) => (b ? { id, ...PLACEMENT } : { id })),
      );
    },
  };
  return m;
}

/** Shards no node wants when `isNew` nodes place by `owners` and the rest by `plainOwners`. */
function unwanted(isNew: Set<string>, ids: string[]): number {
  const b = owners(SHARDS, ids), p = plainOwners(SHARDS, ids);
  return Array.from({ length: SHARDS }, (_, s) => s)
    .filter((s) => ids.every((id) => (isNew.has(id) ? b[s] : p[s]) !== id)).length;
}

Deno.test("upgrade placement: old and new placements mixed would leave shards with no owner", () => {
  // why the fallback exists: bench-1 upgraded alone, bench-2 and bench-3 still on plain HRW
  assert.ok(unwanted(new Set(["bench-1"]), IDS) > 0);
  assert.equal(unwanted(new Set(IDS), IDS), 0);
  assert.equal(unwanted(new Set(), IDS), 0);
});

Deno.test("upgrade placement: plain HRW while an old node is live, bounded load once none is", async () => {
  const clock = new ManualClock(0);
  const records = new Map([["bench-1", true], ["bench-2", false], ["bench-3", false]]);
  const m = membership(records);
  const p = upgradePlacement({ members: m, clock });
  const round = async () => p.owners(SHARDS, await p.members.liveNodes());
  assert.deepEqual(await round(), plainOwners(SHARDS, IDS)); // same owners as the old nodes
  records.set("bench-2", true); // bench-2 restarted with the new version (live set unchanged)
  assert.deepEqual(await round(), plainOwners(SHARDS, IDS));
  assert.equal(m.reads, 1, "records not read again while the live set is the same");
  records.delete("bench-3"); // the last old node leaves: switch
  assert.deepEqual(await round(), owners(SHARDS, ["bench-1", "bench-2"]));
  assert.equal(m.reads, 2);
  records.set("bench-3", true); // and comes back upgraded
  const placed = await round();
  assert.deepEqual(placed, owners(SHARDS, IDS));
  assert.equal(await round(), placed, "the same live set: computed once");
});

Deno.test("upgrade placement: a node upgraded under the same id is seen after refreshMs", async () => {
  const clock = new ManualClock(0);
  const records = new Map([["bench-1", true], ["bench-2", true], ["bench-3", false]]);
  const m = membership(records);
  const p = upgradePlacement({ members: m, clock, refreshMs: 2000 });
  const round = async () => p.owners(SHARDS, await p.members.liveNodes());
  assert.deepEqual(await round(), plainOwners(SHARDS, IDS));
  records.set("bench-3", true); // restarted within its heartbeat's lifetime
  await clock.advance(1000);
  assert.deepEqual(await round(), plainOwners(SHARDS, IDS));
  await clock.advance(1000);
  assert.deepEqual(await round(), owners(SHARDS, IDS));
});

Deno.test("upgrade placement: a live id missing from a short listing counts as this version", async () => {
  const clock = new ManualClock(0);
  const p = upgradePlacement({
    members: {
      liveNodes: () => Promise.resolve(IDS),
      nodes: () => Promise.resolve([{ id: "bench-1", ...PLACEMENT }]),
    },
    clock,
  });
  assert.deepEqual(p.owners(SHARDS, await p.members.liveNodes()), owners(SHARDS, IDS));
});
