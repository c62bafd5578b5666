import assert from "node:assert/strict";
import { ClusterTwins } from "./client.ts";
import { MAX_BATCHES_IN_FLIGHT } from "./reads.ts";
import { serveNode, serveShard } from "./serve.ts";
import { TwinHost } from "../runtime/twin_host.ts";
import { memoryPersistence } from "../persistence/memory.ts";
import { memoryTransport } from "../transport/memory.ts";
import { systemClock } from "../runtime/clock.ts";
import { silentLogger } from "../obs/log.ts";
import { createMetrics } from "../obs/metrics.ts";
import type { Transport } from "../transport/port.ts";
import { UnavailableError } from "../errors.ts";

const SHARDS = 4;

/**
 * Two nodes on one memory transport: `owner` owns every shard, `router` none. `hint` is the
 * router's guess of each shard's owner (none: reads go to the shard subjects).
 */
function pair(hint?: string) {
  const inner = memoryTransport();
  const requests: string[] = [];
  const counting: Transport = {
    publish: (s, d) => inner.publish(s, d),
    subscribe: (s, cb) => inner.subscribe(s, cb),
    request: (s, d, o) => (requests.push(s), inner.request(s, d, o)),
    gather: (s, d, o) => inner.gather(s, d, o),
    [Symbol.asyncDispose]: () => inner[Symbol.asyncDispose](),
  };
  const persistence = memoryPersistence();
  const owner = new TwinHost({
    persistence,
    transport: inner,
    clock: systemClock,
    logger: silentLogger,
    metrics: createMetrics(),
    flushDelayMs: 1,
  });
  const subs = Array.from({ length: SHARDS }, (_, s) => serveShard(inner, s, owner));
  subs.push(serveNode(inner, "owner", owner, () => true));
  // a node that owns nothing: it answers not_owner for everything
  subs.push(serveNode(inner, "other", owner, () => false));
  const idle = new TwinHost({
    persistence: memoryPersistence(),
    transport: inner,
    clock: systemClock,
    logger: silentLogger,
    metrics: createMetrics(),
  });
  const router = new ClusterTwins({
    transport: counting,
    host: idle,
    snapshots: persistence.snapshots,
    shards: SHARDS,
    owns: () => false,
    ownerHint: () => hint,
    timeoutMs: 500,
  });
  return {
    owner,
    router,
    requests,
    subs,
    async [Symbol.asyncDispose]() {
      for (const s of subs) s.unsubscribe();
      await owner.close();
      await idle.close();
      await inner[Symbol.asyncDispose]();
    },
  };
}

async function readMany(p: ReturnType<typeof pair>) {
  const ids = Array.from({ length: 40 }, (_, i) => `dev-${i}`);
  for (const id of ids) await p.router.putAttributes(id, { n: Number(id.slice(4)) });
  p.requests.length = 0;
  const states = await Promise.all([...ids, ...ids, "missing"].map((id) => p.router.get(id)));
  for (const [i, s] of states.slice(0, 80).entries()) {
    assert.equal(s?.id, ids[i % 40]);
    assert.deepEqual(s?.attributes, { n: i % 40 });
  }
  assert.equal(states[80], null);
}

Deno.test("routed reads: concurrent reads of a shard share batched requests", async () => {
  await using p = pair();
  await readMany(p);
  // 81 reads over 4 shards: per shard, the first reads leave alone, the rest queue for one batch
  const most = SHARDS * (MAX_BATCHES_IN_FLIGHT + 1);
  assert.ok(p.requests.length <= most, `${p.requests.length} requests for 81 reads`);
});

Deno.test("routed reads: with the owner known, reads of all its shards share batches", async () => {
  await using p = pair("owner");
  await readMany(p);
  const most = MAX_BATCHES_IN_FLIGHT + 1;
  assert.ok(p.requests.length <= most, `${p.requests.length} requests for 81 reads`);
  assert.ok(p.requests.every((s) => s === "tm.node.owner"));
});

Deno.test("routed reads: a wrong owner hint answers not_owner and the shard answers", async () => {
  await using p = pair("other");
  await readMany(p);
  const viaNode = p.requests.filter((s) => s === "tm.node.other").length;
  const viaShards = p.requests.filter((s) => s.startsWith("tm.shard.")).length;
  assert.ok(viaNode >= 1 && viaShards >= 4, `${viaNode} node and ${viaShards} shard requests`);
});

Deno.test("routed reads: a read after a routed write sees the write", async () => {
  await using p = pair();
  await p.router.putAttributes("press-1", { site: "a" });
  const reads = Array.from({ length: 10 }, () => p.router.get("press-1"));
  await p.router.patchDesired("press-1", { speed: 3 });
  const after = await p.router.get("press-1");
  assert.deepEqual(after?.desired, { speed: 3 });
  for (const s of await Promise.all(reads)) assert.equal(s?.id, "press-1");
});

Deno.test("routed reads: no owner answers 503 shard_unavailable for every read", async () => {
  await using p = pair();
  for (const s of p.subs) s.unsubscribe();
  const results = await Promise.allSettled(["a", "b", "c"].map((id) => p.router.get(id)));
  for (const r of results) {
    assert.equal(r.status, "rejected");
    assert.ok(r.reason instanceof UnavailableError);
    assert.equal(r.reason.code, "shard_unavailable");
  }
});
