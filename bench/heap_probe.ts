/**
 * Live JS heap per twin, measured in-process after full garbage collections: the floor under
 * the memory bench's RSS. It builds N twin records with `applyTwin` (one telemetry message
 * each, like the memory bench), then N twin actors in an `ActorSystem` holding such records.
 *
 * `deno run --v8-flags=--expose-gc bench/heap_probe.ts [twins]` prints one JSON line:
 * `{"twins":100000,"recordBytes":843,"actorBytes":1148}` (bytes per twin).
 * @module
 */
import { emptyTwin, type TwinMessage, type TwinRecord } from "../actors/twin.ts";
import { applyTwin } from "../actors/twin_apply.ts";
import { ActorSystem } from "../src/runtime/actor_system.ts";
import { systemClock } from "../src/runtime/clock.ts";
import { silentLogger } from "../src/obs/log.ts";

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

if (import.meta.main) {
  const twins = Number(Deno.args[0] ?? 100_000);
  const rec = recordBytes(twins);
  const act = await actorBytes(twins);
  console.log(JSON.stringify({
    twins,
    recordBytes: Math.round(rec),
    actorBytes: Math.round(act),
  }));
  Deno.exit(0);
}
