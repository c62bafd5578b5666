import assert from "node:assert/strict";
import { ManualClock } from "../runtime/clock.ts";
import { createLogger } from "../obs/log.ts";
import { memoryDocStores } from "../persistence/doc_store.ts";
import { memoryTransport } from "../transport/memory.ts";
import { subjects } from "../transport/subjects.ts";
import type { TwinState } from "../../actors/twin.ts";
import { type JsonObject, mergePatch } from "../../actors/json.ts";
import { TwinNotFoundError, VersionConflictError } from "../errors.ts";
import { CampaignDriver } from "./campaign_driver.ts";
import type { CampaignTwins } from "./campaign_twins.ts";
import { CampaignStore, CHUNK } from "./campaign_store.ts";
import { type CampaignInput, CampaignService, MAX_CAMPAIGNS } from "./campaign_service.ts";
import type { Campaign } from "./campaign_model.ts";

const T0 = Date.parse("2024-05-03T12:00:00Z");
const FW = { id: "press-2.0.0", version: "2.0.0", size: 4096, sha256: "cd".repeat(32) };
const log = createLogger("error");

/** Twins in memory: what the driver reads and patches. */
class Twins implements CampaignTwins {
  readonly m = new Map<string, TwinState>();
  patches = 0;
  constructor(readonly clock: ManualClock) {}

  add(id: string, attributes: JsonObject) {
    const now = this.clock.now();
    this.m.set(id, {
      id,
      version: 1,
      attributes,
      reported: {},
      desired: {},
      delta: {},
      metadata: { reported: {}, desired: {}, createdAt: now, updatedAt: now },
      connectivity: { status: "unknown", since: null },
    });
  }
  /** The device reports `reported.firmware`. */
  report(id: string, firmware: JsonObject) {
    const t = this.m.get(id)!;
    const now = this.clock.now();
    this.m.set(id, {
      ...t,
      version: t.version + 1,
      reported: { ...t.reported, firmware },
      metadata: { ...t.metadata, reported: { ...t.metadata.reported, firmware: { ts: now } } },
    });
  }
  get(id: string) {
    return Promise.resolve(this.m.get(id) ?? null);
  }
  patchDesired(id: string, patch: JsonObject, ifMatch?: number) {
    const t = this.m.get(id);
    if (!t) return Promise.reject(new TwinNotFoundError(id));
    if (ifMatch !== undefined && ifMatch !== t.version) {
      return Promise.reject(new VersionConflictError(id, ifMatch, t.version));
    }
    this.patches++;
    const next = { ...t, version: t.version + 1, desired: mergePatch(t.desired, patch) };
    this.m.set(id, next);
    return Promise.resolve(next);
  }
  list(after: string | undefined, limit: number, filter: Record<string, string>) {
    const ids = [...this.m.keys()].sort().filter((id) => after === undefined || id > after);
    const items = ids.map((id) => this.m.get(id)!).filter((t) =>
      Object.entries(filter).every(([k, v]) => String(t.attributes[k]) === v)
    );
    const page = items.slice(0, limit);
    return Promise.resolve(
      items.length > limit ? { items: page, next: page[page.length - 1].id } : { items: page },
    );
  }
  offered(id: string) {
    return (this.m.get(id)!.desired.firmware as JsonObject | undefined) ?? null;
  }
}

async function setup(n = 6) {
  const clock = new ManualClock(T0);
  const docs = memoryDocStores();
  const store = await CampaignStore.open(docs);
  const twins = new Twins(clock);
  for (let i = 1; i <= n; i++) twins.add(`press-${i}`, { type: "press" });
  twins.add("robot-1", { type: "robot" });
  const transport = memoryTransport();
  // deno-lint-ignore no-explicit-any
  const events: any[] = [];
  transport.subscribe(subjects.eventsOf("campaign", "*"), (m) => events.push(m.data));
  const firmware = { get: (id: string) => Promise.resolve(id === FW.id ? FW : null) };
  const driver = (owns?: (id: string) => boolean) =>
    new CampaignDriver({
      store,
      twins,
      firmware,
      transport,
      logger: log,
      clock,
      tickMs: 100,
      owns,
    });
  const service = new CampaignService({ store, firmware, transport, clock, logger: log });
  return { clock, docs, store, twins, transport, events, driver, service };
}

const INPUT: CampaignInput = {
  name: "presses to 2.0.0",
  firmware: FW.id,
  selector: { type: "press" },
  waves: [{ count: 2 }, { percent: 100 }],
  successThreshold: 1,
  errorThreshold: 0.5,
};

const done = (version = "2.0.0") => ({ version, state: "done", progress: 100 });

Deno.test("driver: waves go out one after the other, records and events are stored", async () => {
  const s = await setup();
  const d = s.driver();
  const c = await s.service.create(INPUT);
  assert.equal(c.state, "scheduled");
  await d.tick(); // targets resolved, wave 1 offered
  assert.equal((await s.service.get(c.id)).state, "running");
  assert.equal((await s.service.get(c.id)).total, 6, "robot-1 does not match");
  await d.tick(); // nothing new
  assert.deepEqual(s.twins.offered("press-1"), {
    version: "2.0.0",
    url: "/v1/firmware/press-2.0.0/download",
    sha256: FW.sha256,
    size: 4096,
    campaign: c.id,
  });
  assert.equal(s.twins.offered("press-3"), null);
  let got = await s.service.get(c.id);
  assert.deepEqual(got.waves.map((w) => [w.counts.sent, w.counts.pending]), [[2, 0], [0, 4]]);
  // what the metrics read
  assert.deepEqual(d.campaignCounts(), { scheduled: 0, running: 1, waiting_window: 0, paused: 0 });
  const devices = d.deviceCounts();
  assert.deepEqual([devices.sent, devices.pending, devices.done], [2, 4, 0]);

  s.twins.report("press-1", { version: "2.0.0", state: "downloading", progress: 50 });
  s.twins.report("press-2", done());
  await d.tick();
  assert.equal(s.twins.offered("press-3"), null, "1 of 2 done: wave 2 waits");
  s.twins.report("press-1", done());
  await d.tick();
  for (const id of ["press-3", "press-4", "press-5", "press-6"]) {
    assert.equal(s.twins.offered(id)?.campaign, c.id, id);
    s.twins.report(id, done());
  }
  await d.tick();
  got = await s.service.get(c.id);
  assert.equal(got.state, "completed");
  assert.equal(got.reason, "6 of 6 done, 0 failed");

  const page = await s.service.devices(c.id, { limit: 100 });
  assert.equal(page.items.length, 6);
  assert.deepEqual(
    page.items[0].history.map((h) => [h.state, h.progress]),
    [["sent", null], ["downloading", 50], ["done", 100]],
  );
  assert.deepEqual(page.items.map((x) => x.wave), [1, 1, 2, 2, 2, 2]);
  const states = s.events.filter((e) => e.data.event === "state").map((e) => e.data.state);
  assert.deepEqual(states, ["scheduled", "running", "completed"]);
  const versions = s.events.map((e) => e.version);
  assert.deepEqual(versions, [...versions].sort((a, b) => a - b), "revisions only grow");
  assert.ok(s.events.every((e) => e.type === "campaign" && e.twin === c.id));
  assert.equal(d.held, 0, "a completed campaign is let go");
  assert.equal(d.campaignCounts().running, 0);
  assert.equal(d.deviceCounts().done, 0, "its devices leave the counts with it");
  await d[Symbol.asyncDispose]();
});

Deno.test("driver: a restarted driver picks running campaigns up from the store", async () => {
  const s = await setup();
  const c = await s.service.create(INPUT);
  const first = s.driver();
  await first.tick();
  await first.tick();
  await first[Symbol.asyncDispose]();
  s.twins.report("press-1", done());
  s.twins.report("press-2", done());
  const second = s.driver(); // knows nothing: lists the store
  await second.tick();
  assert.equal(s.twins.offered("press-3")?.campaign, c.id);
  const got = await s.service.get(c.id);
  assert.equal(got.waves[0].counts.done, 2);
  await second[Symbol.asyncDispose]();
});

Deno.test("driver: two drivers at once never lose or duplicate a transition", async () => {
  const s = await setup(60);
  const c = await s.service.create({ ...INPUT, waves: [{ count: 30 }, { percent: 100 }] });
  const a = s.driver();
  const b = s.driver();
  let lost = 0;
  const del = s.store.deleteChunks.bind(s.store);
  s.store.deleteChunks = (c, n) => (lost++, del(c, n));
  for (let i = 0; i < 4; i++) await Promise.all([a.tick(), b.tick()]);
  assert.equal(lost, 1, "both started it; one lost and removed its records");
  for (let i = 1; i <= 30; i++) s.twins.report(`press-${i}`, done());
  for (let i = 0; i < 4; i++) await Promise.all([a.tick(), b.tick()]);
  for (let i = 31; i <= 60; i++) s.twins.report(`press-${i}`, done());
  for (let i = 0; i < 6; i++) await Promise.all([a.tick(), b.tick()]);
  const got = await s.service.get(c.id);
  assert.equal(got.state, "completed", got.reason);
  const all = (await s.service.devices(c.id, { limit: 1000 })).items;
  assert.equal(all.length, 60);
  for (const dev of all) {
    assert.deepEqual(dev.history.map((h) => h.state), ["sent", "done"], dev.id);
  }
  assert.ok(CHUNK < 30, "the waves span several chunks");
  const sets = new Set((await s.store.chunks.list()).map((x) => x.key.split(".")[1]));
  assert.deepEqual([...sets], [got.chunkSet], "the loser of the start left no records behind");
  const states = s.events.filter((e) => e.data.event === "state").map((e) => e.data.state);
  assert.deepEqual(states, ["scheduled", "running", "completed"], "each transition once");
  await a[Symbol.asyncDispose]();
  await b[Symbol.asyncDispose]();
});

Deno.test("driver: cancel withdraws offers not yet acted on", async () => {
  const s = await setup();
  const c = await s.service.create(INPUT);
  const d = s.driver();
  await d.tick();
  await d.tick();
  s.twins.report("press-1", { version: "2.0.0", state: "installing" });
  await s.service.cancel(c.id);
  await d.tick();
  assert.equal(s.twins.offered("press-2"), null, "withdrawn");
  assert.equal(s.twins.offered("press-1")?.campaign, c.id, "mid-install: left alone");
  const got = await s.service.get(c.id);
  assert.equal(got.state, "cancelled");
  assert.equal(got.cleanup, false);
  const devs = (await s.service.devices(c.id, { limit: 10 })).items;
  assert.deepEqual(devs.map((x) => x.state), [
    "installing",
    "cancelled",
    "cancelled",
    "cancelled",
    "cancelled",
    "cancelled",
  ]);
  const patches = s.twins.patches;
  await d.tick();
  assert.equal(s.twins.patches, patches, "nothing more to do");
  assert.deepEqual(d.campaignCounts(), {
    scheduled: 0,
    running: 0,
    waiting_window: 0,
    paused: 0,
  });
  assert.equal(d.deviceCounts().cancelled, 0, "a cancelled campaign is not counted");
  await assert.rejects(() => s.service.pause(c.id), /is cancelled; it cannot be paused/);
  const stored = await s.service.get(c.id);
  assert.ok(await s.store.chunk(stored, 0));
  await s.service.delete(c.id);
  assert.equal(await s.store.chunk(stored, 0), null, "device records deleted too");
  await assert.rejects(() => s.service.get(c.id), /not found/);
  await d[Symbol.asyncDispose]();
});

Deno.test("driver: only the owner drives; the firmware must exist", async () => {
  const s = await setup();
  const c = await s.service.create(INPUT);
  const other = s.driver(() => false);
  await other.tick();
  assert.equal((await s.service.get(c.id)).state, "scheduled");
  await assert.rejects(
    () => s.service.create({ ...INPUT, firmware: "nope-1.0" }),
    /Firmware "nope-1.0" not found/,
  );
  await assert.rejects(
    () => s.service.create({ ...INPUT, selector: {} }),
    /selector: name at least one attribute/,
  );
  await assert.rejects(
    () =>
      s.service.create({
        ...INPUT,
        maintenanceWindow: { start: "22:00", end: "22:00" },
      }),
    /maintenanceWindow.start and end must differ/,
  );
  await other[Symbol.asyncDispose]();
});

Deno.test("driver: the number of campaigns is bounded, device pages are bounded", async () => {
  const s = await setup(60);
  const headers = s.store.headers;
  for (let i = 0; i < MAX_CAMPAIGNS; i++) {
    await headers.put(`c-x${String(i).padStart(4, "0")}`, { id: `c-${i}` } as Campaign);
  }
  await assert.rejects(() => s.service.create(INPUT), /There are 1000 campaigns/);
  await headers.delete("c-x0000");
  const c = await s.service.create(INPUT);
  const d = s.driver();
  await d.tick();
  const p1 = await s.service.devices(c.id, { limit: 25, state: "pending" });
  assert.equal(p1.items.length, 25);
  const p2 = await s.service.devices(c.id, {
    limit: 25,
    state: "pending",
    cursor: Number(p1.next),
  });
  assert.equal(p2.items[0].id, p1.items[24].id.replace(/\d+$/, (n) => String(Number(n) + 1)));
  await d[Symbol.asyncDispose]();
});
