import assert from "node:assert/strict";
import { OpenAPIHono } from "@hono/zod-openapi";
import { createApp } from "./app.ts";
import { fleetRoutes, mergeFleet } from "./fleet.ts";
import { silentLogger } from "../src/obs/log.ts";
import { memoryHost } from "../src/runtime/testing.ts";
import { MAX_GROUPS, type NodeFleet } from "../src/runtime/fleet_index.ts";

const put = (attributes: Record<string, unknown>) => ({
  method: "PUT",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ attributes }),
});

Deno.test("GET /v1/twins?prefix= lists the ids that start with it, paged; a bad prefix is a 400", async () => {
  const { host, transport, metrics } = memoryHost();
  const app = createApp({ host, transport, metrics, logger: silentLogger, ready: () => true });
  try {
    for (const id of ["valve-9", "valve-10", "valve-11", "valve-1", "valves", "vale", "w"]) {
      assert.equal((await app.request(`/v1/twins/${id}`, put({ site: "a" }))).status, 201);
    }
    const ids = async (q: string) => {
      const r = await app.request(`/v1/twins?${q}`);
      assert.equal(r.status, 200);
      const b = await r.json();
      return { ids: b.items.map((t: { id: string }) => t.id), cursor: b.cursor };
    };
    assert.deepEqual(await ids("prefix=valve-1"), {
      ids: ["valve-1", "valve-10", "valve-11"],
      cursor: undefined,
    });
    const p1 = await ids("prefix=valve-&limit=2");
    assert.deepEqual(p1.ids, ["valve-1", "valve-10"]);
    const p2 = await ids(`prefix=valve-&limit=2&cursor=${p1.cursor}`);
    assert.deepEqual(p2.ids, ["valve-11", "valve-9"]);
    assert.deepEqual(await ids("prefix=valve-&site=b"), { ids: [], cursor: undefined });
    assert.deepEqual((await ids("prefix=zz")).ids, []);
    for (const bad of ["prefix=", "prefix=a%20b", `prefix=${"x".repeat(129)}`]) {
      const r = await app.request(`/v1/twins?${bad}`);
      assert.equal(r.status, 400, bad);
      await r.body?.cancel();
    }
  } finally {
    await host.close();
  }
});

Deno.test("GET /v1/fleet sums the nodes' groups and says which nodes did not answer", async () => {
  const zero = [0, 0, 0, 0, 0];
  const g = (site: string | null, line: string | null, twins: number, online: number) => ({
    site,
    line,
    twins,
    connectivity: [online, twins - online, 0] as [number, number, number],
    active: [1, 0, 0, 0, 0],
    acknowledged: zero,
    messages: 20,
  });
  const answers: NodeFleet[] = [
    { node: "a", complete: true, groups: [g("s1", "l1", 2, 1), g(null, null, 1, 0)], other: null },
    { node: "b", complete: true, groups: [g("s1", "l1", 3, 3), g("s1", null, 1, 1)], other: null },
  ];
  const app = new OpenAPIHono().route(
    "/v1/fleet",
    fleetRoutes({ gather: () => Promise.resolve({ answers, expected: ["a", "b", "c"] }) }),
  );
  const r = await app.request("/v1/fleet");
  assert.equal(r.status, 200);
  const f = await r.json();
  assert.equal(f.complete, false);
  assert.deepEqual(f.nodes, { expected: 3, answered: 2, missing: ["c"] });
  assert.equal(f.totals.twins, 7);
  assert.deepEqual(f.totals.connectivity, { online: 5, offline: 2, unknown: 0 });
  assert.equal(f.totals.alarms.active.critical, 4);
  assert.equal(f.totals.messagesPerSecond, 8);
  assert.deepEqual(f.sites.map((s: { site: string }) => s.site), ["s1", null]);
  assert.deepEqual(
    f.sites[0].lines.map((l: { line: string; twins: number }) => [l.line, l.twins]),
    [["l1", 5], [null, 1]],
  );
  assert.equal(f.other, null);
});

Deno.test("fleet: past the bound, the smallest groups are summed in 'other'", () => {
  const groups = Array.from({ length: MAX_GROUPS + 5 }, (_, i) => ({
    site: `s${i}`,
    line: null,
    twins: i + 1,
    connectivity: [0, 0, i + 1] as [number, number, number],
    active: [0, 0, 0, 0, 0],
    acknowledged: [0, 0, 0, 0, 0],
    messages: 0,
  }));
  const f = mergeFleet([{ node: "a", complete: true, groups, other: null }]);
  assert.equal(f.sites.length, MAX_GROUPS);
  assert.equal(f.other?.twins, 1 + 2 + 3 + 4 + 5);
  assert.equal(f.totals.twins, ((MAX_GROUPS + 5) * (MAX_GROUPS + 6)) / 2);
});
