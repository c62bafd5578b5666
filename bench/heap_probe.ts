/**
 * Live JS heap per twin, measured in-process after full garbage collections: the floor under
 * the memory bench's RSS. It builds N twin records with `applyTwin` (one telemetry message
 * each, like the memory bench), then N twin actors in an `ActorSystem` holding such records,
 * then N resident twins of a whole `TwinHost` (its bookkeeping included) fed through its
 * inbound dispatch as the node does, over a snapshot store and log that keep nothing.
 *
 * `deno run --v8-flags=--expose-gc bench/heap_probe.ts [twins] [--host-only]` prints one JSON
 * line: `{"twins":100000,"recordBytes":516,"actorBytes":646,"hostBytes":764}` (bytes per twin;
 * with `--host-only`, the host figure alone).
 * @module
 */
import { emptyTwin, type TwinMessage, type TwinRecord } from "../actors/twin.ts";
import { applyTwin } from "../actors/twin_apply.ts";
import { ActorSystem } from "../src/runtime/actor_system.ts";
import { systemClock } from "../src/runtime/clock.ts";
import { silentLogger } from "../src/obs/log.ts";
import { createMetrics } from "../src/obs/metrics.ts";
import { TwinHost } from "../src/runtime/twin_host.ts";
import { memoryTransport } from "../src/transport/memory.ts";
import { parseDeviceBody, parseDeviceTopic } from "../actors/validate.ts";
import type { Accepted } from "../src/bridges/ingest.ts";

function heapAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("Run with --v8-flags=--expose-gc");
  gc();
  gc();
  return Deno.memoryUsage().heapUsed;
}

function telemetry(i: number): TwinMessage {
  return {
    type: "device",
    source: "mqtt",
    seq: i + 1,
    at: Date.now(),
    body: {
      kind: "telemetry",
      fields: { temp: 15 + (i % 200) / 10, rpm: i % 3000, ok: true },
    },
  };
}

/** Bytes of live heap per twin record (state and seqs) with three reported fields. */
export function recordBytes(n: number): number {
  const before = heapAfterGc();
  const keep: TwinRecord[] = [];
  for (let i = 0; i < n; i++) {
    keep.push(applyTwin(emptyTwin(`m-${i}`, Date.now()), telemetry(i), Date.now()).record);
  }
  const after = heapAfterGc();
  if (keep.length !== n) throw new Error("unreachable");
  return (after - before) / n;
}

/** Bytes of live heap per resident twin actor (cell, mailbox and record). */
export async function actorBytes(n: number): Promise<number> {
  const before = heapAfterGc();
  const sys = new ActorSystem<TwinRecord, TwinMessage, null>({
    clock: systemClock,
    logger: silentLogger,
    idleMs: 3_600_000,
    behavior: {
      load: (id) => Promise.resolve(emptyTwin(id, Date.now())),
      receive: (_id, rec, msg) => ({ state: applyTwin(rec, msg, Date.now()).record, reply: null }),
      passivate: () => Promise.resolve(),
    },
  });
  const sent: Promise<null>[] = [];
  for (let i = 0; i < n; i++) sent.push(sys.send(`m-${i}`, telemetry(i), { wait: true }));
  await Promise.all(sent);
  sent.length = 0;
  const after = heapAfterGc();
  if (sys.size !== n) throw new Error(`${sys.size} actors resident, expected ${n}`);
  await sys.close();
  return (after - before) / n;
}

/**
 * Bytes of live heap per resident twin of a `TwinHost` (record, actor, the host's maps), each
 * twin made by one telemetry message through the inbound dispatch, as on the node.
 */
export async function hostBytes(n: number): Promise<number> {
  const before = heapAfterGc();
  const host = new TwinHost({
    persistence: {
      snapshots: {
        load: () => Promise.resolve(null),
        saveMany: () => Promise.resolve(),
        list: () => Promise.resolve([]),
      },
      log: { retire: () => Promise.resolve() },
      [Symbol.asyncDispose]: () => Promise.resolve(),
    },
    transport: memoryTransport(),
    clock: systemClock,
    logger: silentLogger,
    metrics: createMetrics(),
    idleMs: 3_600_000,
  });
  const enc = new TextEncoder();
  for (let i = 0; i < n; i += 1000) {
    const batch: Accepted[] = [];
    for (let j = i; j < Math.min(n, i + 1000); j++) {
      const topic = `twins/m-${j}/telemetry`;
      const t = parseDeviceTopic(topic);
      const payload = enc.encode(
        `{"temp":${(15 + (j % 200) / 10).toFixed(1)},"rpm":${j % 3000},"ok":true}`,
      );
      if (typeof t === "string") throw new Error(t);
      const body = parseDeviceBody(t, payload);
      if (typeof body === "string") throw new Error(body);
      batch.push({ entry: { seq: j + 1, topic, payload, at: Date.now() }, topic: t, body });
    }
    host.dispatch(batch);
    while (host.pending > 0) await host.flush();
  }
  const after = heapAfterGc();
  if (host.resident !== n) throw new Error(`${host.resident} twins resident, expected ${n}`);
  await host.close();
  return (after - before) / n;
}

if (import.meta.main) {
  const twins = Number(Deno.args.find((a) => !a.startsWith("--")) ?? 100_000);
  if (Deno.args.includes("--host-only")) {
    console.log(JSON.stringify({ twins, hostBytes: Math.round(await hostBytes(twins)) }));
    Deno.exit(0);
  }
  const rec = recordBytes(twins);
  const act = await actorBytes(twins);
  const host = await hostBytes(twins);
  console.log(JSON.stringify({
    twins,
    recordBytes: Math.round(rec),
    actorBytes: Math.round(act),
    hostBytes: Math.round(host),
  }));
  Deno.exit(0);
}
