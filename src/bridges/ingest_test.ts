import assert from "node:assert/strict";
import { type Accepted, Ingest } from "./ingest.ts";
import { memoryPersistence } from "../persistence/memory.ts";
import { silentLogger } from "../obs/log.ts";
import { createMetrics } from "../obs/metrics.ts";
import type { InboundLog } from "../persistence/port.ts";

/** A gate that always accepts. */
const open = { canAccept: () => true, whenAccepting: () => Promise.resolve() };

const enc = new TextEncoder();
const submit = (ing: Ingest, twin: string, n: number) =>
  ing.submit(
    { twin, kind: "telemetry" },
    { kind: "telemetry", fields: { n } },
    `twins/${twin}/telemetry`,
    enc.encode(`{"n":${n}}`),
    Date.now(),
  );

Deno.test("group commit: sequences in accept order, acks only after the batch is durable, applied after its acks", async () => {
  const p = memoryPersistence();
  let appends = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let appending!: () => void;
  const firstAppend = new Promise<void>((r) => (appending = r));
  const log: InboundLog = {
    ...p.log,
    async append(e) {
      appends++;
      if (appends === 1) {
        appending();
        await gate; // first commit is slow: later messages gather
      }
      return p.log.append(e);
    },
  };
  const seen: number[] = [];
  const ackedBefore: number[] = [];
  const ing = new Ingest({
    log,
    firstSeq: 10,
    onDurable: (b: Accepted[]) => {
      seen.push(...b.map((a) => a.entry.seq));
      ackedBefore.push(acked);
    },
    gate: open,
    logger: silentLogger,
    metrics: createMetrics(),
  });
  let acked = 0;
  const all = Array.from({ length: 50 }, (_, i) => submit(ing, `d${i % 3}`, i).then(() => acked++));
  await firstAppend;
  await Promise.resolve();
  assert.equal(acked, 0); // nothing acknowledged before it is durable
  release();
  await Promise.all(all);
  assert.equal(appends, 2); // one slow commit, then one batch of the 49 that gathered
  await ing.close(); // waits for the last batch's hand-over
  assert.deepEqual(seen, Array.from({ length: 50 }, (_, i) => 10 + i));
  // each batch is applied only once its own acks are out
  assert.equal(ackedBefore.length, 2);
  assert.ok(ackedBefore[0] >= 1);
  assert.equal(ackedBefore[1], 50);
  assert.equal(await p.log.lastSeq(), 59);
});

Deno.test("backpressure holds acknowledgements, then releases them; a failed commit refuses its messages", async () => {
  const p = memoryPersistence();
  let accepting = false;
  let held!: () => void;
  const holding = new Promise<void>((r) => (held = r));
  let reopen!: () => void;
  const reopened = new Promise<void>((r) => (reopen = r));
  const metrics = createMetrics();
  const ing = new Ingest({
    log: p.log,
    firstSeq: 1,
    onDurable: () => {},
    gate: {
      canAccept: () => accepting,
      whenAccepting: () => (held(), reopened),
    },
    logger: silentLogger,
    metrics,
  });
  let acked = false;
  const m = submit(ing, "a", 1).then(() => (acked = true));
  await holding; // the ingest waits for the gate
  assert.equal(acked, false);
  assert.equal((await metrics.ingestBackpressure.get()).values[0].value, 1);
  accepting = true;
  reopen();
  await m;
  assert.equal(acked, true);
  await ing.close();

  const failing = new Ingest({
    log: { ...p.log, append: () => Promise.reject(new Error("disk full")) },
    firstSeq: 1,
    onDurable: () => assert.fail("must not dispatch"),
    gate: open,
    logger: silentLogger,
    metrics,
  });
  await assert.rejects(submit(failing, "a", 1), /disk full/);
  await failing.close();
});
