import assert from "node:assert/strict";
import { type Change, EdgeNodes } from "./edge_nodes.ts";
import { edgeTopic, roundTrip, type TestMetric } from "./testing.ts";

const T = {
  nbirth: edgeTopic("spBv1.0/plant/NBIRTH/gw1"),
  ndata: edgeTopic("spBv1.0/plant/NDATA/gw1"),
  ndeath: edgeTopic("spBv1.0/plant/NDEATH/gw1"),
  dbirth: edgeTopic("spBv1.0/plant/DBIRTH/gw1/press"),
  ddata: edgeTopic("spBv1.0/plant/DDATA/gw1/press"),
  ddeath: edgeTopic("spBv1.0/plant/DDEATH/gw1/press"),
};

const nodeMetrics = (bdSeq: number): TestMetric[] => [
  { name: "Node Control/Rebirth", alias: 1, type: "Boolean", value: false },
  { name: "Inputs/Temp C", alias: 2, type: "Float", value: 21.5 },
  { name: "bdSeq", type: "UInt64", value: bdSeq },
];
const deviceMetrics: TestMetric[] = [
  {
    name: "Speed",
    alias: 10,
    type: "Int32",
    value: -3,
    properties: { engUnit: { type: "String", value: "rpm" } },
  },
  { name: "Running", alias: 11, type: "Boolean", value: true },
];

function born(edges = new EdgeNodes(), bdSeq = 0) {
  const n = edges.receive(
    T.nbirth,
    roundTrip({ timestamp: 1000, seq: 0, metrics: nodeMetrics(bdSeq) }),
    1,
    0,
  );
  const d = edges.receive(
    T.dbirth,
    roundTrip({ timestamp: 1001, seq: 1, metrics: deviceMetrics }),
    1,
    0,
  );
  return { edges, n, d };
}

const kinds = (cs: Change[]) => cs.map((c) => `${c.twin} ${c.kind}`);

Deno.test("edge nodes: NBIRTH and DBIRTH make their twins online, with metadata and values", () => {
  const { edges, n, d } = born();
  assert.deepEqual(kinds(n.changes), [
    "plant:gw1 status",
    "plant:gw1 reported",
    "plant:gw1 telemetry",
  ]);
  assert.deepEqual(n.changes[2], {
    twin: "plant:gw1",
    kind: "telemetry",
    fields: { "Node Control/Rebirth": false, "Inputs/Temp C": 21.5 },
    ts: 1000,
  });
  assert.deepEqual(kinds(d.changes), [
    "plant:gw1:press status",
    "plant:gw1:press reported",
    "plant:gw1:press telemetry",
  ]);
  assert.deepEqual((d.changes[2] as { fields: unknown }).fields, { Speed: -3, Running: true });
  assert.deepEqual(edges.find("plant:gw1")?.edge.bdSeq, 0);
  assert.deepEqual(edges.born, 2);
});

Deno.test("edge nodes: DATA by alias (no datatype, as the spec advises) and by name", () => {
  const { edges } = born();
  const s = edges.receive(
    T.ddata,
    roundTrip({ timestamp: 2000, seq: 2, metrics: [{ alias: 10, type: "Int32", value: 7 }] }),
    1,
    10,
  );
  assert.deepEqual(s.changes, [{
    twin: "plant:gw1:press",
    kind: "telemetry",
    fields: { Speed: 7 },
    ts: 2000,
  }]);
  assert.deepEqual(s.rebirth, undefined);
  const byName = edges.receive(
    T.ndata,
    roundTrip({ seq: 3, metrics: [{ name: "Inputs/Temp C", type: "Float", value: 22 }] }),
    1,
    10,
  );
  assert.deepEqual(byName.changes, [{
    twin: "plant:gw1",
    kind: "telemetry",
    fields: { "Inputs/Temp C": 22 },
  }]);
});

Deno.test("edge nodes: a seq gap asks for a rebirth (once per interval) and still applies the data", () => {
  const { edges } = born();
  const gap = edges.receive(
    T.ddata,
    roundTrip({ seq: 5, metrics: [{ alias: 10, type: "Int32", value: 1 }] }),
    1,
    100,
  );
  assert.deepEqual(gap.rebirth, "seq_gap");
  assert.deepEqual(gap.changes.length, 1);
  const again = edges.receive(
    T.ddata,
    roundTrip({ seq: 9, metrics: [{ alias: 10, type: "Int32", value: 2 }] }),
    1,
    200,
  );
  assert.deepEqual(again.rebirth, undefined, "rate limited");
  const later = edges.receive(
    T.ddata,
    roundTrip({ seq: 20, metrics: [{ alias: 10, type: "Int32", value: 3 }] }),
    1,
    6000,
  );
  assert.deepEqual(later.rebirth, "seq_gap");
  // seq wraps at 256
  const e = edges.find("plant:gw1")!.edge;
  e.lastSeq = 255;
  const wrap = edges.receive(
    T.ndata,
    roundTrip({ seq: 0, metrics: [{ alias: 2, type: "Float", value: 1 }] }),
    1,
    20_000,
  );
  assert.deepEqual(wrap.rebirth, undefined);
});

Deno.test("edge nodes: a resend (same seq) is ignored", () => {
  const { edges } = born();
  const p = roundTrip({ seq: 2, metrics: [{ alias: 10, type: "Int32", value: 1 }] });
  assert.deepEqual(edges.receive(T.ddata, p, 1, 0).changes.length, 1);
  const dup = edges.receive(T.ddata, p, 1, 0);
  assert.deepEqual([dup.ignored, dup.changes.length], ["duplicate", 0]);
});

Deno.test("edge nodes: data before a birth is refused and answered with a rebirth request", () => {
  const edges = new EdgeNodes();
  const s = edges.receive(
    T.ndata,
    roundTrip({ seq: 4, metrics: [{ alias: 2, type: "Float", value: 1 }] }),
    1,
    0,
  );
  assert.deepEqual([s.refused, s.rebirth, s.changes.length], ["no_birth", "no_birth", 0]);
  // a device not born (its edge node is)
  born(edges);
  const e = edges.find("plant:gw1")!.edge;
  const other = edgeTopic("spBv1.0/plant/DDATA/gw1/other");
  const d = edges.receive(
    other,
    roundTrip({ seq: e.lastSeq + 1, metrics: [{ alias: 1, type: "Float", value: 1 }] }),
    1,
    60_000,
  );
  assert.deepEqual([d.refused, d.rebirth], ["no_birth", "no_birth"]);
});

Deno.test("edge nodes: an unknown alias asks for a rebirth; nothing known is refused", () => {
  const { edges } = born();
  const s = edges.receive(
    T.ddata,
    roundTrip({
      seq: 2,
      metrics: [{ alias: 99, type: "Int32", value: 1 }, { alias: 10, type: "Int32", value: 4 }],
    }),
    1,
    0,
  );
  assert.deepEqual([s.rebirth, s.refused, s.skipped], ["unknown_alias", undefined, 1]);
  assert.deepEqual((s.changes[0] as { fields: unknown }).fields, { Speed: 4 });
  const none = edges.receive(
    T.ddata,
    roundTrip({ seq: 3, metrics: [{ alias: 98, type: "Int32", value: 1 }] }),
    1,
    0,
  );
  assert.deepEqual(none.refused, "unknown_alias");
});

Deno.test("edge nodes: NDEATH with the birth's bdSeq takes the node and its devices offline; another bdSeq is stale", () => {
  const { edges } = born(new EdgeNodes(), 4);
  const stale = edges.receive(
    T.ndeath,
    roundTrip({ metrics: [{ name: "bdSeq", type: "UInt64", value: 3 }] }),
    1,
    0,
  );
  assert.deepEqual([stale.ignored, stale.changes.length], ["stale_death", 0]);
  const death = edges.receive(
    T.ndeath,
    roundTrip({ metrics: [{ name: "bdSeq", type: "UInt64", value: 4 }] }),
    1,
    0,
  );
  assert.deepEqual(death.changes, [
    { twin: "plant:gw1", kind: "status", online: false },
    { twin: "plant:gw1:press", kind: "status", online: false },
  ]);
  assert.deepEqual(edges.born, 0);
  // the restarted edge node: a new bdSeq, data again after its births
  born(edges, 5);
  assert.deepEqual(edges.find("plant:gw1")?.edge.bdSeq, 5);
  const late = edges.receive(
    T.ndeath,
    roundTrip({ metrics: [{ name: "bdSeq", type: "UInt64", value: 4 }] }),
    1,
    0,
  );
  assert.deepEqual(late.ignored, "stale_death", "the old session's will, late");
  assert.deepEqual(edges.born, 2);
});

Deno.test("edge nodes: NDEATH of an edge node not heard since start-up takes its twin offline", () => {
  const edges = new EdgeNodes();
  const s = edges.receive(
    T.ndeath,
    roundTrip({ metrics: [{ name: "bdSeq", type: "UInt64", value: 9 }] }),
    1,
    0,
  );
  assert.deepEqual(s.changes, [{ twin: "plant:gw1", kind: "status", online: false }]);
  assert.equal(edges.size, 0, "no entry made");
});

Deno.test("edge nodes: DDEATH takes the device offline; its data then needs a DBIRTH", () => {
  const { edges } = born();
  const s = edges.receive(T.ddeath, roundTrip({ seq: 2, metrics: [] }), 1, 0);
  assert.deepEqual(s.changes, [{ twin: "plant:gw1:press", kind: "status", online: false }]);
  const d = edges.receive(
    T.ddata,
    roundTrip({ seq: 3, metrics: [{ alias: 10, type: "Int32", value: 1 }] }),
    1,
    0,
  );
  assert.deepEqual(d.refused, "no_birth");
});

Deno.test("edge nodes: a rebirth (NBIRTH again) makes the devices wait for their DBIRTH", () => {
  const { edges } = born();
  edges.receive(T.nbirth, roundTrip({ seq: 0, metrics: nodeMetrics(0) }), 1, 0);
  const d = edges.receive(
    T.ddata,
    roundTrip({ seq: 1, metrics: [{ alias: 10, type: "Int32", value: 1 }] }),
    1,
    0,
  );
  assert.deepEqual(d.refused, "no_birth");
});

Deno.test("edge nodes: bounded — edge nodes, devices per node and metrics in all; unborn ones go first", () => {
  const edges = new EdgeNodes({
    maxEdgeNodes: 2,
    maxDevices: 1,
    maxMetricsTotal: 10,
    rebirthIntervalMs: 0,
  });
  const birth = (edge: string, metrics: TestMetric[] = [{ name: "a", type: "Int32", value: 1 }]) =>
    edges.receive(edgeTopic(`spBv1.0/g/NBIRTH/${edge}`), roundTrip({ seq: 0, metrics }), 1, 0);
  assert.deepEqual(birth("e1").refused, undefined);
  // an unknown edge node's data takes an (unborn) entry
  edges.receive(edgeTopic("spBv1.0/g/NDATA/x"), roundTrip({ seq: 1, metrics: [] }), 1, 0);
  assert.deepEqual(edges.size, 2);
  assert.deepEqual(birth("e2").refused, undefined, "the unborn entry is forgotten");
  assert.deepEqual(birth("e3").refused, "too_many_edge_nodes");
  assert.deepEqual(edges.size, 2);
  const dev = (name: string, seq: number) =>
    edges.receive(
      edgeTopic(`spBv1.0/g/DBIRTH/e1/${name}`),
      roundTrip({ seq, metrics: [{ name: "v", type: "Int32", value: 1 }] }),
      1,
      0,
    );
  assert.deepEqual(dev("d1", 1).refused, undefined);
  assert.deepEqual(dev("d2", 2).refused, "too_many_devices");
  const many = Array.from({ length: 9 }, (_, i) => ({ name: `m${i}`, type: "Int32", value: i }));
  assert.deepEqual(
    birth("e2", many).refused,
    "too_many_metrics",
    "e1 1 + d1 1 + e2 9 > 10 (e2's earlier birth is replaced)",
  );
  assert.deepEqual(
    birth("e2", many.slice(0, 8)).refused,
    undefined,
    "1 + 1 + 8 = 10",
  );
});

Deno.test("edge nodes: birth metrics without a name or datatype, or duplicated, are skipped and counted", () => {
  const edges = new EdgeNodes();
  const s = edges.receive(
    T.nbirth,
    roundTrip({
      seq: 0,
      metrics: [
        { name: "ok", alias: 1, type: "Double", value: 1.5 },
        { alias: 2, type: "Double", value: 2 },
        { name: "ok", alias: 3, type: "Double", value: 1.5 },
        { name: "dup alias", alias: 1, type: "Double", value: 4 },
        { name: "ts", type: "Int64", value: 5 },
      ],
    }),
    1,
    0,
  );
  const table = edges.find("plant:gw1")!.known.metrics;
  assert.deepEqual([...table.byName.keys()], ["ok", "ts"]);
  assert.deepEqual((s.changes[2] as { fields: unknown }).fields, { ok: 1.5 });
  assert.ok(s.skipped >= 4);
});

Deno.test("edge nodes: unsettled (a message not made durable), its NDEATH still takes it offline", () => {
  const { edges } = born(new EdgeNodes(), 2);
  edges.unsettle("plant:gw1");
  assert.equal(
    edges.receive(T.ndata, roundTrip({ seq: 2, metrics: [] }), 1, 0).refused,
    "no_birth",
  );
  const death = edges.receive(
    T.ndeath,
    roundTrip({ metrics: [{ name: "bdSeq", type: "UInt64", value: 2 }] }),
    1,
    0,
  );
  assert.deepEqual(death.changes.map((c) => c.twin), ["plant:gw1", "plant:gw1:press"]);
});
