import assert from "node:assert/strict";
import { Hono } from "hono";
import { ClusterTwins } from "./client.ts";
import { serveNode, serveShard } from "./serve.ts";
import { RoutedError } from "./wire.ts";
import { routedMethods } from "./ops.ts";
import { TwinHost } from "../runtime/twin_host.ts";
import type { TwinService } from "../runtime/twin_service.ts";
import { memoryPersistence } from "../persistence/memory.ts";
import { memoryTransport } from "../transport/memory.ts";
import { natsTransport } from "../transport/nats.ts";
import type { Transport } from "../transport/port.ts";
import { systemClock } from "../runtime/clock.ts";
import { silentLogger } from "../obs/log.ts";
import { createMetrics } from "../obs/metrics.ts";
import { MailboxFullError, TwinmillError } from "../errors.ts";
import { errorHandler } from "../../routes/errors.ts";
import { startNats } from "../../tests/harness/mod.ts";
import type { Command } from "../../actors/commands.ts";

const SHARDS = 4;

/** `server` serves every shard from a real twin host; `router` on `client` owns none. */
function pair(server: Transport, client: Transport) {
  const persistence = memoryPersistence();
  const owner = new TwinHost({
    persistence,
    transport: server,
    clock: systemClock,
    logger: silentLogger,
    metrics: createMetrics(),
    flushDelayMs: 1,
    maxTwinBytes: 1024,
  });
  const subs = Array.from({ length: SHARDS }, (_, s) => serveShard(server, s, owner));
  const router = new ClusterTwins({
    transport: client,
    host: owner,
    snapshots: persistence.snapshots,
    shards: SHARDS,
    owns: () => false,
    timeoutMs: 2000,
  });
  return {
    owner,
    router,
    async [Symbol.asyncDispose]() {
      for (const s of subs) s.unsubscribe();
      await owner.close();
    },
  };
}

function command(id: string): Command {
  const now = Date.now();
  return {
    id,
    name: "reboot",
    args: {},
    mode: "async",
    status: "pending",
    source: "api",
    createdAt: now,
    expiresAt: now + 60_000,
    deliveries: 0,
  };
}

/** What the gateway's one error handler answers when `run(svc)` throws. */
async function answer(svc: TwinService, run: (svc: TwinService) => Promise<unknown>) {
  const app = new Hono();
  app.onError(errorHandler(silentLogger));
  app.post("/", async (c) => c.json(await run(svc) ?? null));
  const res = await app.request("/", { method: "POST" });
  return { status: res.status, body: await res.json() };
}

/** Coded errors the owner's host throws, each with the status it maps to. */
const cases: Array<[number, string, (svc: TwinService) => Promise<unknown>]> = [
  [404, "twin_not_found", (svc) => svc.sendCommand("ghost", command("c0"))],
  [412, "version_conflict", (svc) => svc.patchDesired("press-1", { speed: 1 }, 99)],
  [413, "twin_too_large", (svc) => svc.putAttributes("press-2", { blob: "x".repeat(4000) })],
  [404, "alarm_not_found", (svc) => svc.ackAlarm("press-1:hot:1")],
  [409, "command_queue_full", (svc) => svc.sendCommand("press-1", command("c99"))],
];

async function codedErrorsCrossNodes(server: Transport, client: Transport) {
  await using p = pair(server, client);
  await p.router.putAttributes("press-1", { site: "a" });
  for (let i = 0; i < 16; i++) await p.router.sendCommand("press-1", command(`c${i}`));
  for (const [status, code, run] of cases) {
    const there = await run(p.owner).then(() => assert.fail(`${code}: no error`), (e) => e);
    const here = await run(p.router).then(() => assert.fail(`${code}: no error`), (e) => e);
    assert.ok(here instanceof TwinmillError, String(here));
    assert.deepEqual(
      { code: here.code, status: here.status, message: here.message, name: here.name },
      { code, status, message: there.message, name: there.name },
    );
    assert.deepEqual(await answer(p.router, run), await answer(p.owner, run));
  }
}

Deno.test("routed errors: coded errors of the owner keep code, status and message (memory)", async () => {
  const t = memoryTransport();
  await codedErrorsCrossNodes(t, t);
  await t[Symbol.asyncDispose]();
});

Deno.test("routed errors: coded errors of the owner keep code, status and message (NATS)", async () => {
  await using nats = await startNats();
  await using server = await natsTransport({ servers: nats.url, logger: silentLogger });
  await using client = await natsTransport({ servers: nats.url, logger: silentLogger });
  await codedErrorsCrossNodes(server, client);
});

Deno.test("routed errors: batched reads and uncoded errors answer as on the owner", async () => {
  const t = memoryTransport();
  // an owner whose reads are overloaded and whose storage refuses a value as too large
  const failing = Object.fromEntries(routedMethods.map((m) => [m, () => Promise.resolve(null)]));
  const owner = {
    ...failing,
    get: (id: string) => Promise.reject(new MailboxFullError(id)),
    putAttributes: () => Promise.reject(new TypeError("Value too large (max 65536 bytes)")),
  } as unknown as TwinHost;
  const subs = Array.from({ length: SHARDS }, (_, s) => serveShard(t, s, owner));
  subs.push(serveNode(t, "owner", owner, () => true));
  for (const hint of [undefined, "owner"]) {
    const router = new ClusterTwins({
      transport: t,
      host: owner,
      snapshots: memoryPersistence().snapshots,
      shards: SHARDS,
      owns: () => false,
      ownerHint: () => hint,
    });
    const read = (svc: TwinService) => svc.get("press-1");
    const e = await read(router).catch((e) => e);
    assert.ok(e instanceof RoutedError, String(e));
    assert.deepEqual([e.code, e.status, e.name], ["overloaded", 503, "MailboxFullError"]);
    assert.deepEqual(await answer(router, read), await answer(owner, read));
    const put = (svc: TwinService) => svc.putAttributes("press-1", {});
    const again = await put(router).catch((e) => e);
    assert.ok(again instanceof TypeError, String(again));
    const payloadTooLarge = await answer(router, put);
    assert.deepEqual(payloadTooLarge, await answer(owner, put));
    assert.equal(payloadTooLarge.status, 413);
  }
  for (const s of subs) s.unsubscribe();
  await t[Symbol.asyncDispose]();
});
