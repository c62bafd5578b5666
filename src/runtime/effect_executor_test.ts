/**
 * The effect executor on a manual clock: an entry keeps a need while its point is written,
 * unique points get their sub-ms from the entry or a counter, events go to the twin's
 * subject, an effect that throws is contained, rule commands and delivered commands go back
 * to the twin.
 */
import assert from "node:assert/strict";
import { EffectExecutor, type EffectExecutorOptions } from "./effect_executor.ts";
import { ManualClock, settle } from "./clock.ts";
import { LogLimiter } from "./log_limiter.ts";
import { silentLogger } from "../obs/log.ts";
import { createMetrics, type Metrics } from "../obs/metrics.ts";
import { memoryTransport } from "../transport/memory.ts";
import { subjects } from "../transport/subjects.ts";
import { emptyTwin, type TwinEffect, type TwinMessage } from "../../actors/twin.ts";
import type { PointSink } from "../ports/point_sink.ts";

type Written = Parameters<PointSink["write"]>[0];

async function counter(m: Metrics, name: string, labels: Record<string, string> = {}) {
  const metric = (await m.registry.getMetricsAsJSON()).find((x) => x.name === name);
  const values = (metric?.values ?? []) as Array<{ value: number; labels: object }>;
  return values.filter((v) =>
    Object.entries(labels).every(([k, x]) => (v.labels as Record<string, string>)[k] === x)
  ).reduce((n, v) => n + v.value, 0);
}

function setup(extra: Partial<EffectExecutorOptions> = {}) {
  const clock = new ManualClock(5_000);
  const metrics = createMetrics();
  const transport = memoryTransport();
  const written: Written[] = [];
  const pending: Array<() => void> = [];
  const needs: number[] = [];
  const done: number[] = [];
  const sent: Array<{ id: string; msg: TwinMessage }> = [];
  const fx = new EffectExecutor({
    clock,
    logger: silentLogger,
    metrics,
    limiter: new LogLimiter(clock),
    transport,
    points: {
      full: false,
      write: (p) => (written.push(p), new Promise<void>((r) => pending.push(r))),
    },
    state: (id) => emptyTwin(id, 0).state,
    send: (id, msg) => (sent.push({ id, msg }), Promise.resolve({})),
    need: (seq) => needs.push(seq),
    done: (seq) => done.push(seq),
    ...extra,
  });
  return { clock, metrics, transport, fx, written, pending, needs, done, sent };
}

const point = (extra: Partial<Extract<TwinEffect, { type: "point" }>> = {}): TwinEffect => ({
  type: "point",
  tags: { device: "a" },
  fields: { t: 1 },
  ts: 100,
  ...extra,
});

Deno.test("effects: an entry keeps a need until its point is written; unique points get a sub-ms", async () => {
  const { fx, written, pending, needs, done } = setup();
  fx.run("a", [point({ subMs: 7 }), point({ measurement: "alarms", unique: true })], 1_000_003);
  fx.run("a", [point({ measurement: "alarms", unique: true })], undefined);
  fx.run("a", [point({ measurement: "alarms", unique: true })], undefined);
  assert.deepEqual(needs, [1_000_003, 1_000_003]);
  assert.deepEqual(written.map((p) => [p.measurement, p.subMs]), [
    ["telemetry", 7],
    ["alarms", 3], // the entry's sequence, mod one million
    ["alarms", 0], // no entry: the executor's own counter
    ["alarms", 1],
  ]);
  assert.deepEqual(done, []);
  for (const r of pending) r();
  await settle();
  assert.deepEqual(done, [1_000_003, 1_000_003]);
});

Deno.test("effects: events go to the twin's subject; finished commands are counted", async () => {
  const { fx, transport, metrics } = setup();
  const seen: unknown[] = [];
  transport.subscribe(subjects.event("state", "a"), (m) => seen.push(m.data));
  const event = { type: "state" as const, twin: "a", version: 2, ts: 9, data: { x: 1 } };
  fx.run("a", [{ type: "event", event }], undefined);
  assert.deepEqual(seen, [event]);
  const done = { ...event, type: "command" as const, data: { status: "succeeded" } };
  fx.run("a", [{ type: "event", event: done }], undefined);
  assert.equal(await counter(metrics, "twinmill_commands_total", { status: "succeeded" }), 1);
});

Deno.test("effects: an effect that throws is contained; the others run", async () => {
  const desired: unknown[] = [];
  const { fx, metrics, written } = setup({
    downlink: (_id, d) => {
      if (d.bad) throw new Error("cannot serialize");
      desired.push(d);
    },
  });
  fx.run("a", [
    { type: "desired", desired: { bad: true } },
    point(),
    { type: "desired", desired: { fan: "max" } },
  ], undefined);
  assert.deepEqual(desired, [{ fan: "max" }]);
  assert.equal(written.length, 1);
  assert.equal(await counter(metrics, "twinmill_effect_failures_total", { type: "desired" }), 1);
});

Deno.test("effects: a rule command is queued on the twin; delivered commands are marked", async () => {
  let deliver!: (ids: string[]) => void;
  const { fx, sent, clock } = setup({
    commands: { deliver: () => new Promise((r) => (deliver = r)) },
  });
  fx.run("a", [{ type: "command", rule: "r1", name: "stop", args: { now: true } }], undefined);
  assert.equal(sent.length, 1);
  const queued = sent[0].msg;
  assert.ok(queued.type === "command");
  assert.equal(queued.command.source, "rule:r1");
  assert.equal(queued.command.expiresAt, clock.now() + 3_600_000);
  fx.run("a", [{ type: "deliver", commands: [queued.command] }], undefined);
  await clock.advance(10);
  deliver([queued.command.id]);
  await settle();
  assert.deepEqual(sent[1], {
    id: "a",
    msg: { type: "commands_delivered", ids: [queued.command.id], at: 5_010 },
  });
});

Deno.test("effects: points that share the sink's promise (one batch) are retired together, in order", async () => {
  let release!: () => void;
  let batch = new Promise<void>((r) => release = r);
  const { fx, needs, done } = setup({
    points: { full: false, write: () => batch },
  });
  fx.run("a", [point()], 1);
  fx.run("b", [point(), point()], 2);
  fx.run("c", [point()], undefined);
  assert.deepEqual(needs, [1, 2, 2]);
  await settle();
  assert.deepEqual(done, []);
  release();
  await settle();
  assert.deepEqual(done, [1, 2, 2]);
  // a promise already settled (a point with no field) and given again later: a new group
  batch = Promise.resolve();
  fx.run("a", [point()], 3);
  await settle();
  fx.run("a", [point()], 4);
  await settle();
  assert.deepEqual(done, [1, 2, 2, 3, 4]);
});
