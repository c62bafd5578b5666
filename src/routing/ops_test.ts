import assert from "node:assert/strict";
import { ClusterTwins } from "./client.ts";
import { serveShard } from "./serve.ts";
import { type RoutedMethod, routedMethods, twinOps } from "./ops.ts";
import { memoryTransport } from "../transport/memory.ts";
import { memoryPersistence } from "../persistence/memory.ts";
import type { Transport } from "../transport/port.ts";
import type { TwinService } from "../runtime/twin_service.ts";
import type { TwinHost } from "../runtime/twin_host.ts";
import type { Command } from "../../actors/commands.ts";

const SHARDS = 4;

const command: Command = {
  id: "c1",
  name: "reboot",
  args: { delay: 1 },
  mode: "async",
  status: "pending",
  source: "api",
  createdAt: 1,
  expiresAt: 2,
  deliveries: 0,
};

/** One call of each operation: its arguments, the owner's result and the request it sends. */
type Sample<M extends RoutedMethod> = {
  args: Parameters<TwinService[M]>;
  result: unknown;
  /** The request on `tm.shard.{n}`, as nodes of the previous version send and expect it. */
  request: Record<string, unknown>;
};

const samples: { [M in RoutedMethod]: Sample<M> } = {
  get: {
    args: ["press-1"],
    result: { id: "press-1", version: 3 },
    request: { op: "gets", ids: ["press-1"] },
  },
  putAttributes: {
    args: ["press-1", { site: "a" }],
    result: { id: "press-1", version: 1 },
    request: { op: "put", id: "press-1", attributes: { site: "a" } },
  },
  patchDesired: {
    args: ["press-1", { speed: 3 }, 7],
    result: { id: "press-1", version: 8 },
    request: { op: "patch", id: "press-1", patch: { speed: 3 }, ifMatch: 7 },
  },
  ackAlarm: {
    args: ["press-1:hot:4", "seen"],
    result: { id: "press-1:hot:4", acknowledged: true },
    request: { op: "ack", id: "press-1", alarm: "press-1:hot:4", comment: "seen" },
  },
  sendCommand: {
    args: ["press-1", command],
    result: { ...command, status: "delivered" },
    request: { op: "command", id: "press-1", command },
  },
  commands: {
    args: ["press-1"],
    result: [command],
    request: { op: "commands", id: "press-1" },
  },
  commandsListening: {
    args: ["press-1"],
    result: undefined,
    request: { op: "listening", id: "press-1" },
  },
  diagnostics: {
    args: ["press-1"],
    result: { id: "press-1", resident: true },
    request: { op: "diag", id: "press-1" },
  },
  ruleStatus: {
    args: ["press-1"],
    result: [{ rule: "hot", active: false }],
    request: { op: "rules", id: "press-1" },
  },
};

/** A twin host that answers every routed method with its sample result and records calls. */
function fakeHost() {
  const calls: Array<[string, unknown[]]> = [];
  const host = Object.fromEntries(routedMethods.map((m) => [m, (...args: unknown[]) => {
    calls.push([m, args]);
    return Promise.resolve(samples[m].result);
  }]));
  return { calls, host: host as unknown as TwinHost & TwinService };
}

/** A memory transport that encodes as NATS does (JSON both ways) and records requests. */
function jsonTransport(inner: Transport, sent: string[]): Transport {
  const json = (d: unknown) => d === undefined ? undefined : JSON.parse(JSON.stringify(d));
  return {
    ...inner,
    request: (s, d, o) => (sent.push(JSON.stringify(d)), inner.request(s, json(d), o).then(json)),
  };
}

function setup(owns: boolean) {
  const inner = memoryTransport();
  const sent: string[] = [];
  const owner = fakeHost();
  const local = fakeHost();
  const subs = Array.from({ length: SHARDS }, (_, s) => serveShard(inner, s, owner.host));
  const twins = new ClusterTwins({
    transport: jsonTransport(inner, sent),
    host: local.host,
    snapshots: memoryPersistence().snapshots,
    shards: SHARDS,
    owns: () => owns,
    timeoutMs: 500,
  });
  return { twins, sent, owner, local, subs };
}

/** Call `method` of `svc` with its sample arguments. */
function call(svc: TwinService, method: RoutedMethod): Promise<unknown> {
  const f = svc[method] as (...args: unknown[]) => Promise<unknown>;
  return f.apply(svc, samples[method].args);
}

for (const method of routedMethods) {
  Deno.test(`routing table: ${method} runs on the owner with its arguments and result`, async () => {
    const p = setup(false);
    const result = await call(p.twins, method);
    assert.deepEqual(result, samples[method].result ?? undefined);
    assert.deepEqual(p.owner.calls, [[method, samples[method].args]]);
    assert.deepEqual(p.local.calls, []);
    // the wire format of the previous version, key order included
    assert.deepEqual(p.sent, [JSON.stringify(samples[method].request)]);
    for (const s of p.subs) s.unsubscribe();
  });
}

Deno.test("routing table: an owned twin's operations run on the local host", async () => {
  const p = setup(true);
  for (const method of routedMethods) {
    assert.deepEqual(await call(p.twins, method), samples[method].result);
  }
  assert.deepEqual(p.local.calls.map(([m]) => m), routedMethods);
  assert.deepEqual(p.owner.calls, []);
  assert.deepEqual(p.sent, []);
  for (const s of p.subs) s.unsubscribe();
});

Deno.test("routing table: every entry has its own wire name and a field per argument", () => {
  const names = routedMethods.map((m) => twinOps[m].op);
  assert.equal(new Set(names).size, names.length);
  assert.ok(!names.includes("gets"), "gets is the batched reads' request");
  for (const m of routedMethods) {
    assert.equal(twinOps[m].args.length, samples[m].args.length, m);
  }
});
