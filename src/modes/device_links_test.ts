import assert from "node:assert/strict";
import { memoryTransport } from "../transport/memory.ts";
import { createMetrics } from "../obs/metrics.ts";
import { silentLogger } from "../obs/log.ts";
import type { Command } from "../../actors/commands.ts";
import type { ConnectionInfo, Connector, Rejection } from "../ports/connector.ts";
import { subjects } from "../transport/subjects.ts";
import { hostLinks, republishDesired, serveConnectors, sessionsOf } from "./device_links.ts";

/** A connector that records what reaches it; `listening` twins take their commands. */
function fakeConnector(listening: string[] = [], failDesired = false) {
  const desired: [string, unknown][] = [];
  const connected = new Map<string, ConnectionInfo>();
  const rejected = new Map<string, Rejection[]>();
  const c: Connector = {
    name: "fake",
    publishDesired(id, d) {
      desired.push([id, d]);
      return failDesired ? Promise.reject(new Error("broker down")) : Promise.resolve();
    },
    deliverCommands: (twin, cmds: Command[]) =>
      Promise.resolve(listening.includes(twin) ? cmds.map((x) => x.id) : []),
    disconnect: () => 0,
    disconnectCert: () => 0,
    reloadTls: () => Promise.resolve(),
    devicesConnected: 0,
    connection: (twin) => connected.get(twin) ?? null,
    rejections: (twin) => rejected.get(twin) ?? [],
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
  return { c, desired, connected, rejected };
}

const cmd = (id: string): Command => ({
  id,
  name: "reboot",
  args: {},
  mode: "async",
  status: "pending",
  source: "api",
  createdAt: 0,
  expiresAt: 1,
  deliveries: 0,
});

Deno.test("device links: a twin's desired state reaches the connectors over the transport", async () => {
  await using t = memoryTransport();
  const metrics = createMetrics();
  const f = fakeConnector();
  using _ = serveConnectors({
    transport: t,
    nodeId: "n1",
    connectors: [f.c],
    logger: silentLogger,
    metrics,
  });
  hostLinks(t, "n1").downlink("press.7", { speed: 3 });
  assert.deepEqual(f.desired, [["press.7", { speed: 3 }]]); // in-process: at once
});

Deno.test("device links: a failed downlink is counted, never thrown", async () => {
  await using t = memoryTransport();
  const metrics = createMetrics();
  const f = fakeConnector([], true);
  using _ = serveConnectors({
    transport: t,
    nodeId: "n1",
    connectors: [f.c],
    logger: silentLogger,
    metrics,
  });
  hostLinks(t, "n1").downlink("a", { x: 1 });
  await new Promise((r) => setTimeout(r, 0));
  assert.match(
    await metrics.registry.metrics(),
    /twinmill_effect_failures_total\{type="desired"\} 1/,
  );
});

Deno.test("device links: commands go to the listening device; nobody listening: none, at once", async () => {
  await using t = memoryTransport();
  const f = fakeConnector(["a"]);
  using _ = serveConnectors({
    transport: t,
    nodeId: "n1",
    connectors: [f.c],
    logger: silentLogger,
    metrics: createMetrics(),
  });
  const { commands } = hostLinks(t, "n1");
  assert.deepEqual(await commands.deliver("a", [cmd("c1"), cmd("c2")]), ["c1", "c2"]);
  const started = Date.now();
  assert.deepEqual(await commands.deliver("b", [cmd("c3")]), []);
  assert.ok(Date.now() - started < 500, "a single node does not wait for other nodes");
});

Deno.test("device links: in a cluster only the node whose device listens answers another node's commands", async () => {
  await using t = memoryTransport();
  const serve = (nodeId: string, listening: string[]) =>
    serveConnectors({
      transport: t,
      nodeId,
      connectors: [fakeConnector(listening).c],
      logger: silentLogger,
      metrics: createMetrics(),
    });
  using _n1 = serve("n1", []);
  using _n2 = serve("n2", []);
  using _n3 = serve("n3", ["b"]);
  // n1 asks: n3 hands them over; n1 answers its own request, n2 stays silent
  assert.deepEqual(await hostLinks(t, "n1").commands.deliver("b", [cmd("c1")]), ["c1"]);
  // a node of an earlier version asks with no `from` and takes the first answer as the only
  // one: it is n3's, not an empty one
  const first = await t.request(subjects.commands("b"), { twin: "b", commands: [cmd("c2")] });
  assert.deepEqual(first, { ids: ["c2"] });
});

Deno.test("device links: commands with no connector at all stay queued", async () => {
  await using t = memoryTransport();
  assert.deepEqual(await hostLinks(t, "n1").commands.deliver("a", [cmd("c1")]), []);
});

Deno.test("device links: sessions: this node's report first, others only with something", async () => {
  await using t = memoryTransport();
  const metrics = createMetrics();
  const here = fakeConnector();
  const there = fakeConnector();
  const quiet = fakeConnector();
  const info = { clientId: "a", protocol: "mqtt 3.1.1", connectedAt: 5, commands: true };
  there.connected.set("a", info);
  const serve = (nodeId: string, c: Connector) =>
    serveConnectors({ transport: t, nodeId, connectors: [c], logger: silentLogger, metrics });
  using _1 = serve("n1", here.c);
  using _2 = serve("n2", there.c);
  using _3 = serve("n3", quiet.c);
  assert.deepEqual(await sessionsOf(t, "n1", "a"), [
    { node: "n1", connection: null, rejections: [] },
    { node: "n2", connection: info, rejections: [] },
  ]);
});

Deno.test("device links: republishDesired sends every stored desired state to every connector", async () => {
  const a = fakeConnector();
  const b = fakeConnector();
  const stored = {
    async *withDesired() {
      yield { id: "x", desired: { v: 1 } };
      yield { id: "y", desired: { v: 2 } };
    },
  };
  assert.equal(await republishDesired(stored, [a.c, b.c]), 2);
  assert.deepEqual(a.desired, [["x", { v: 1 }], ["y", { v: 2 }]]);
  assert.deepEqual(b.desired, a.desired);
});
