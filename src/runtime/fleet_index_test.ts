import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { emptyTwin, type TwinRecord, type TwinState } from "../../actors/twin.ts";
import type { Alarm } from "../../actors/rules/alarm.ts";
import { FleetIndex, MAX_GROUPS } from "./fleet_index.ts";

/** A twin at version 1 with these attributes, connectivity and open alarms. */
function twin(
  id: string,
  attributes: Record<string, unknown>,
  status: "online" | "offline" | "unknown" = "unknown",
  alarms?: Alarm[],
): TwinState {
  const s = emptyTwin(id, 0).state;
  return {
    ...s,
    version: 1,
    attributes: attributes as TwinState["attributes"],
    connectivity: { status, since: status === "unknown" ? null : 1 },
    ...(alarms ? { alarms } : {}),
  };
}

const alarm = (severity: Alarm["severity"], state: Alarm["state"] = "active") =>
  ({ id: `x:${severity}`, severity, state }) as Alarm;

async function* records(states: TwinState[]): AsyncIterable<TwinRecord> {
  for (const state of states) yield { state, seqs: {} };
}

Deno.test("fleet index: counts move with each change, per site and line", () => {
  const f = new FleetIndex();
  const a = twin("a", { site: "s1", line: "l1" }, "online");
  f.apply("a", a, true, 10_500);
  f.apply("b", twin("b", { site: "s1" }, "offline", [alarm("critical")]), false, 10_500);
  f.apply("c", twin("c", {}), false, 10_500);
  let s = f.summary("n", 12_000);
  assertEquals(s.complete, true);
  assertEquals(s.groups.length, 3);
  const g = (site: string | null, line: string | null) =>
    f.summary("n", 12_000).groups.find((x) => x.site === site && x.line === line);
  assertEquals(g("s1", "l1")?.connectivity, [1, 0, 0]);
  assertEquals(g("s1", "l1")?.messages, 1);
  assertEquals(g("s1", null)?.active, [1, 0, 0, 0, 0]);
  assertEquals(g(null, null)?.twins, 1);
  // the alarm acknowledged, then cleared; b moves to line l1
  f.apply("b", twin("b", { site: "s1" }, "offline", [alarm("critical", "acknowledged")]), false, 0);
  assertEquals(g("s1", null)?.acknowledged, [1, 0, 0, 0, 0]);
  assertEquals(g("s1", null)?.active, [0, 0, 0, 0, 0]);
  f.apply("b", twin("b", { site: "s1", line: "l1" }, "online"), false, 0);
  assertEquals(g("s1", null), undefined);
  assertEquals(g("s1", "l1")?.connectivity, [2, 0, 0]);
  // a telemetry message that changes none of it only counts
  f.apply("a", { ...a, version: 2 }, true, 11_200);
  assertEquals(g("s1", "l1")?.messages, 2);
  // messages leave the window after 10 s
  assertEquals(f.summary("n", 21_000).groups.find((x) => x.site === "s1")?.messages, 1);
  assertEquals(f.summary("n", 30_000).groups.find((x) => x.site === "s1")?.messages, 0);
  // site scope
  s = f.summary("n", 12_000, ["s1"]);
  assertEquals(s.groups.map((x) => x.site), ["s1"]);
  assertEquals(s.other, null);
  f.drop((id) => id === "a");
  assertEquals(g("s1", "l1")?.twins, 1);
  assertEquals(f.size, 2);
});

Deno.test("fleet index: seeds stored twins it has not seen, owned ones only", async () => {
  const f = new FleetIndex({ owns: (id) => id !== "theirs" });
  f.apply("a", twin("a", { site: "new" }), false, 0);
  const n = await f.seed(
    records([twin("a", { site: "old" }), twin("b", {}), twin("theirs", {})]),
  );
  assertEquals(n, 1);
  assertEquals(f.summary("n", 0).groups.map((g) => g.site).sort(), ["new", null]);
  f.awaitSeed();
  assertEquals(f.summary("n", 0).complete, false);
  await f.seed(records([]));
  assertEquals(f.summary("n", 0).complete, true);
  // not owned: a change does not add it
  f.apply("theirs", twin("theirs", {}), true, 0);
  assertEquals(f.size, 2);
});

Deno.test("fleet index: groups are bounded; past the bound twins count in 'other'", () => {
  const f = new FleetIndex();
  for (let i = 0; i <= MAX_GROUPS; i++) {
    f.apply(`t${i}`, twin(`t${i}`, { site: `s${i}` }), false, 0);
  }
  f.apply("obj", twin("obj", { site: { a: 1 } }), false, 0);
  const s = f.summary("n", 0);
  assertEquals(s.groups.length, MAX_GROUPS);
  assertEquals(s.other?.twins, 2);
  // a group emptied makes room
  f.drop((id) => id === "t0");
  f.apply("late", twin("late", { site: "late" }), false, 0);
  assertEquals(f.summary("n", 0).groups.some((g) => g.site === "late"), true);
});
