import assert from "node:assert/strict";
import {
  begin,
  cancel,
  createCampaign,
  pause,
  progressOf,
  resume,
  waveSizes,
} from "./campaigns.ts";
import {
  type Action,
  type Campaign,
  type CampaignEvent,
  type CampaignSpec,
  CampaignStateError,
  type DeviceRecord,
  LIMITS,
  type Observation,
} from "./campaign_model.ts";
import { step } from "./campaign_step.ts";

const T0 = Date.parse("2024-05-03T12:00:00Z"); // a Friday, noon UTC

const SPEC: CampaignSpec = {
  name: "presses to 2.0",
  firmware: { id: "press-fw-2.0.0", version: "2.0.0", size: 1024, sha256: "ab".repeat(32) },
  selector: { type: "press" },
  waves: [{ count: 2 }, { percent: 100 }],
  successThreshold: 1,
  errorThreshold: 0.5,
};

const ids = (n: number) => Array.from({ length: n }, (_, i) => `press-${i + 1}`);

/** A campaign plus its devices, driven by hand: what the driver does, without I/O. */
class Sim {
  c: Campaign;
  devices: DeviceRecord[] = [];
  now = T0;
  actions: Action[] = [];
  events: CampaignEvent[] = [];

  constructor(spec: Partial<CampaignSpec> = {}, n = 6) {
    this.c = createCampaign("c1", { ...SPEC, ...spec }, this.now);
    const r = begin(this.c, ids(n), this.now);
    this.c = r.campaign;
    this.devices = r.devices;
    this.events.push(...r.events);
  }

  /** One step with `obs`; the returned offers are made (observed next step) unless told not. */
  step(obs: Observation[] = []): Action[] {
    const r = step(this.c, this.devices, obs, this.now);
    this.c = r.campaign;
    for (const [i, d] of r.updates) this.devices[i] = d;
    this.events.push(...r.events);
    this.actions = r.actions;
    return r.actions;
  }

  /** Step, make every offer, step again so the offers are recorded. */
  offer(): string[] {
    const acts = this.step();
    const offers = acts.filter((a) => a.kind === "offer");
    this.step(offers.map((a) => ({ kind: "offered", device: a.device, ts: this.now })));
    return offers.map((a) => a.twin);
  }

  report(twin: string, state: string, extra: Record<string, unknown> = {}) {
    const device = this.devices.findIndex((d) => d.id === twin);
    return this.step([{
      kind: "report",
      device,
      firmware: { version: "2.0.0", state, ...extra },
      changedAt: this.now,
    }]);
  }

  state(twin: string) {
    return this.devices.find((d) => d.id === twin)!.state;
  }
}

Deno.test("waves: counts, percentages rounded up, and the last wave takes the rest", () => {
  assert.deepEqual(waveSizes(6, [{ count: 2 }, { percent: 100 }]), [2, 4]);
  assert.deepEqual(waveSizes(10, [{ percent: 10 }, { percent: 25 }, { count: 1 }]), [1, 3, 6]);
  assert.deepEqual(waveSizes(7, [{ percent: 50 }, { count: 1 }]), [4, 3]);
  assert.deepEqual(waveSizes(3, [{ count: 5 }, { count: 5 }]), [3, 0], "more asked than there is");
  assert.deepEqual(waveSizes(5, [{ count: 1 }]), [5], "one wave: everything");
});

Deno.test("begin: targets cut into waves; nothing or too much to update fails the campaign", () => {
  const s = new Sim();
  assert.equal(s.c.state, "running");
  assert.equal(s.c.total, 6);
  assert.deepEqual(s.c.waves.map((w) => [w.first, w.size]), [[0, 2], [2, 4]]);
  assert.ok(s.devices.every((d) => d.state === "pending"));

  const none = begin(createCampaign("c2", SPEC, T0), [], T0);
  assert.equal(none.campaign.state, "failed");
  assert.match(none.campaign.reason, /no twin matches the selector type=press/);
  const many = begin(createCampaign("c3", SPEC, T0), ids(LIMITS.maxTargets + 1), T0);
  assert.equal(many.campaign.state, "failed");
  assert.match(many.campaign.reason, /more than 100000/);
});

Deno.test("threshold: the next wave starts only when the success threshold is met", () => {
  const s = new Sim();
  assert.deepEqual(s.offer(), ["press-1", "press-2"], "wave 1 only");
  assert.equal(s.c.waves[0].counts.sent, 2);
  assert.equal(s.c.waves[1].counts.pending, 4);
  assert.deepEqual(s.step(), [], "nothing more to offer while wave 1 runs");

  s.report("press-1", "downloading", { progress: 40 });
  s.report("press-1", "installing");
  s.report("press-1", "done");
  s.report("press-2", "installing");
  assert.deepEqual(s.actions, [], "1 of 2 done < 1.0: wave 2 waits");
  assert.equal(s.c.waves[1].startedAt, null);

  const offers = s.report("press-2", "done");
  assert.deepEqual(offers.map((a) => a.twin), ["press-3", "press-4", "press-5", "press-6"]);
  assert.equal(s.c.wave, 1);
  assert.notEqual(s.c.waves[0].finishedAt, null);
  assert.deepEqual(
    s.devices[0].history.map((h) => [h.state, h.progress]),
    [["sent", null], ["downloading", 40], ["installing", null], ["done", 100]],
  );
  const waves = s.events.filter((e) => e.event === "wave").map((e) =>
    e.event === "wave" && `${e.wave}:${e.phase}`
  );
  assert.deepEqual(waves, ["1:started", "1:finished", "2:started"]);
});

Deno.test("threshold: a lower success threshold releases the next wave early", () => {
  const s = new Sim({ successThreshold: 0.5, errorThreshold: 1 });
  s.offer();
  const offers = s.report("press-1", "done");
  assert.equal(offers.length, 4, "1 of 2 done = 0.5: wave 2 starts while press-2 still runs");
  // the campaign completes only when every device has finished, stragglers included
  s.step(offers.map((a) => ({ kind: "offered", device: a.device, ts: s.now })));
  for (const id of ["press-3", "press-4", "press-5", "press-6"]) s.report(id, "done");
  assert.equal(s.c.state, "running", "press-2 is still in flight");
  s.report("press-2", "done");
  assert.equal(s.c.state, "completed");
  assert.equal(s.c.reason, "6 of 6 done, 0 failed");
  assert.deepEqual(
    { done: progressOf(s.c).done, finished: progressOf(s.c).finished },
    { done: 6, finished: 1 },
  );
});

Deno.test("threshold: the error threshold pauses; wave 2 stays untouched; resume accepts", () => {
  const s = new Sim();
  s.offer();
  s.report("press-1", "failed", { error: "flash verify failed" });
  assert.equal(s.c.state, "paused");
  assert.equal(s.c.pausedBy, "error_threshold");
  assert.equal(s.c.reason, "error threshold 0.5 reached in wave 1 (1 of 2 failed)");
  assert.equal(s.devices[0].error, "flash verify failed");

  s.report("press-2", "done");
  assert.deepEqual(s.actions, [], "paused: no offers");
  assert.equal(s.state("press-2"), "done", "devices already offered are still followed");
  assert.ok(s.devices.slice(2).every((d) => d.state === "pending"));

  s.c = resume(s.c, s.now);
  assert.equal(s.c.state, "running");
  const offers = s.step();
  assert.equal(offers.length, 4, "after resume wave 1 is finished (nothing in flight): wave 2");
  s.step(offers.map((a) => ({ kind: "offered", device: a.device, ts: s.now })));
  // the override is for wave 1 only: failures in wave 2 pause again
  s.report("press-3", "failed");
  assert.equal(s.c.state, "running", "1 of 4 = 0.25 < 0.5");
  s.report("press-4", "failed");
  assert.equal(s.c.state, "paused");
  assert.match(s.c.reason, /wave 2 \(2 of 4 failed\)/);
});

Deno.test("threshold: a wave that ends below the success threshold pauses the campaign", () => {
  const s = new Sim({ successThreshold: 1, errorThreshold: 0.9 }, 4);
  s.offer();
  s.report("press-1", "failed");
  assert.equal(s.c.state, "running", "0.5 < 0.9: keep going, press-2 may still make it");
  s.report("press-2", "done");
  assert.equal(s.c.state, "paused");
  assert.equal(s.c.pausedBy, "success_threshold");
  assert.equal(s.c.reason, "wave 1 ended with 1 of 2 done, below the success threshold 1");
  s.c = resume(s.c, s.now);
  assert.equal(s.step().length, 2, "resumed: wave 2 goes out");
});

Deno.test("reports: other versions, other campaigns and stale reports say nothing", () => {
  const s = new Sim();
  s.offer();
  s.now += 10_000;
  const dev = (firmware: unknown, changedAt: number | null = s.now): Observation => ({
    kind: "report",
    device: 0,
    firmware,
    changedAt,
  });
  s.step([dev({ version: "1.0.0", state: "done" })]);
  assert.equal(s.state("press-1"), "sent", "done with the old version");
  s.step([dev({ version: "2.0.0", state: "failed", campaign: "other" })]);
  assert.equal(s.state("press-1"), "sent", "another campaign's report");
  s.step([dev({ version: "2.0.0", state: "failed" }, T0 - 60_000)]);
  assert.equal(s.state("press-1"), "sent", "a failure from before the offer");
  s.step([dev({ state: "done" })]);
  assert.equal(s.state("press-1"), "sent", "done needs the version");
  s.step([dev({ state: "downloading", progress: 12.6 })]);
  assert.equal(s.state("press-1"), "downloading", "a fresh report without a version counts");
  assert.equal(s.devices[0].progress, 13);
  // a device that already runs the version (reported before the offer) is done at once
  s.step([{
    kind: "report",
    device: 1,
    firmware: { version: "2.0.0", state: "done" },
    changedAt: T0 - 86_400_000,
  }]);
  assert.equal(s.state("press-2"), "done");
});

Deno.test("window: a closed maintenance window holds the offers, an open one lets them go", () => {
  // noon on a Friday; the window is 22:00-04:00 UTC
  const s = new Sim({ maintenanceWindow: { start: "22:00", end: "04:00", tz: "UTC" } });
  assert.deepEqual(s.step(), []);
  assert.equal(s.c.state, "waiting_window");
  assert.equal(
    s.c.reason,
    "maintenance window 22:00-04:00 UTC is closed; it opens at 2024-05-03T22:00:00.000Z",
  );
  assert.equal(s.c.waves[0].startedAt, null);
  s.now = Date.parse("2024-05-03T22:00:00Z");
  assert.equal(s.offer().length, 2);
  assert.equal(s.c.state, "running");
  // past midnight, still open: wave 2 goes out when wave 1 is done
  s.now = Date.parse("2024-05-04T03:00:00Z");
  s.report("press-1", "done");
  assert.equal(s.report("press-2", "done").length, 4);
  // a wave released after the window closed waits; devices already offered go on
  const late = new Sim({ maintenanceWindow: { start: "22:00", end: "04:00", tz: "UTC" } });
  late.now = Date.parse("2024-05-03T23:00:00Z");
  late.offer();
  late.now = Date.parse("2024-05-04T05:00:00Z");
  late.report("press-1", "done");
  assert.equal(late.c.state, "running", "nothing waits to be sent: wave 1 is all out");
  assert.deepEqual(late.report("press-2", "done"), []);
  assert.equal(late.c.state, "waiting_window");
  assert.equal(late.c.wave, 1);
  assert.match(late.c.reason, /opens at 2024-05-04T22:00:00.000Z/);
});

Deno.test("pause and resume by the user; invalid transitions are refused", () => {
  const s = new Sim();
  s.offer();
  s.c = pause(s.c, s.now);
  assert.equal(s.c.state, "paused");
  assert.equal(s.c.reason, "paused by the user");
  s.report("press-1", "done");
  s.report("press-2", "done");
  assert.deepEqual(s.actions, [], "paused: wave 2 is not released");
  assert.throws(() => pause(s.c, s.now), CampaignStateError);
  s.c = resume(s.c, s.now);
  assert.equal(s.step().length, 4);
  assert.throws(() => resume(s.c, s.now), /is running; it cannot be resumed/);
  // a user pause does not lift the error threshold
  assert.equal(s.c.waves[0].override, false);
});

Deno.test("cancel: unsent offers are dropped, sent ones withdrawn, started ones left alone", () => {
  const s = new Sim();
  s.offer();
  s.report("press-1", "downloading");
  s.c = cancel(s.c, s.now);
  assert.equal(s.c.cleanup, true);
  const acts = s.step();
  assert.deepEqual(acts, [{ kind: "withdraw", device: 1, twin: "press-2" }]);
  assert.equal(s.state("press-1"), "downloading", "mid-update: it keeps its offer");
  assert.ok(s.devices.slice(2).every((d) => d.state === "cancelled"));
  s.step([{ kind: "withdrawn", device: 1, ts: s.now }]);
  assert.equal(s.state("press-2"), "cancelled");
  assert.equal(s.c.cleanup, false);
  assert.equal(s.c.waves[1].counts.cancelled, 4);
  assert.throws(() => cancel(s.c, s.now), /is cancelled; it cannot be cancelled/);
  assert.throws(() => resume(s.c, s.now), CampaignStateError);
  // an offer that went out while the cancel was written is withdrawn too
  const t = new Sim();
  const offers = t.step();
  t.c = cancel(t.c, t.now);
  const after = t.step(offers.map((a) => ({ kind: "offered", device: a.device, ts: t.now })));
  assert.deepEqual(after.map((a) => a.twin), ["press-1", "press-2"]);
  assert.ok(after.every((a) => a.kind === "withdraw"));
});

Deno.test("timeouts: a device not done in time has failed", () => {
  const s = new Sim({ timeoutMinutes: 30, errorThreshold: 1 });
  s.offer();
  s.now += 20 * 60_000;
  s.report("press-1", "installing");
  s.now += 10 * 60_000 - 1;
  s.step();
  assert.equal(s.state("press-1"), "installing");
  s.now += 1;
  s.step();
  assert.equal(s.state("press-1"), "failed");
  assert.equal(s.devices[0].error, "timed out after 30 minutes");
  assert.equal(s.state("press-2"), "failed");
  assert.equal(s.c.state, "paused", "0 of 2 done and nothing in flight: below the threshold");
});

Deno.test("offers: failures, missing twins, and the per-step bound", () => {
  const s = new Sim({ waves: [{ percent: 100 }] }, LIMITS.offersPerStep + 5);
  const first = s.step();
  assert.equal(first.length, LIMITS.offersPerStep);
  s.step([
    ...first.slice(2).map((a): Observation => ({ kind: "offered", device: a.device, ts: s.now })),
    { kind: "offer_failed", device: 0, error: "mailbox full", permanent: false },
    { kind: "offer_failed", device: 1, error: "the twin no longer exists", permanent: true },
  ]);
  assert.equal(s.devices[0].state, "pending", "a transient failure is retried");
  assert.equal(s.devices[1].state, "failed");
  assert.deepEqual(s.actions.map((a) => a.device), [
    0,
    ...Array.from({ length: 5 }, (_, i) => i + 200),
  ]);
  s.step([{ kind: "gone", device: 5 }]);
  assert.equal(s.devices[5].state, "failed");
  assert.equal(s.devices[5].error, "the twin no longer exists");
});

Deno.test("history and device events are bounded", () => {
  const s = new Sim({ waves: [{ percent: 100 }] }, LIMITS.deviceEventsPerStep + 50);
  const offers = s.step();
  const r = step(
    s.c,
    s.devices,
    offers.map((a) => ({ kind: "offered", device: a.device, ts: s.now })),
    s.now,
  );
  assert.equal(r.updates.size, LIMITS.deviceEventsPerStep + 50);
  assert.equal(r.events.filter((e) => e.event === "device").length, LIMITS.deviceEventsPerStep);
  assert.equal(r.droppedEvents, 50);
  const one = new Sim({ waves: [{ percent: 100 }] }, 1);
  one.offer();
  for (let p = 0; p < 40; p++) one.report("press-1", "downloading", { progress: p });
  assert.equal(one.devices[0].history.length, LIMITS.history);
  assert.equal(one.devices[0].history.at(-1)!.progress, 39);
});
