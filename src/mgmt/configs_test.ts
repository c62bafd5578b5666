import assert from "node:assert/strict";
import { ConfigService } from "./configs.ts";
import { withConfigs } from "./with_configs.ts";
import {
  configStateOf,
  type ConfigTemplate,
  includes,
  MAX_FRAGMENT_BYTES,
  parseConfig,
  selects,
} from "./config_match.ts";
import { memoryDocStores } from "../persistence/doc_store.ts";
import { memoryPersistence } from "../persistence/memory.ts";
import { memoryTransport } from "../transport/memory.ts";
import { TwinHost } from "../runtime/twin_host.ts";
import { systemClock } from "../runtime/clock.ts";
import { silentLogger } from "../obs/log.ts";
import { createMetrics } from "../obs/metrics.ts";
import type { TwinState } from "../../actors/twin.ts";
import type { TwinmillError } from "../errors.ts";
import type { TwinService } from "../runtime/twin_service.ts";

/** A twin host over memory persistence, a config service over memory documents. */
async function setup() {
  const transport = memoryTransport();
  const host = new TwinHost({
    persistence: memoryPersistence(),
    transport,
    clock: systemClock,
    logger: silentLogger,
    metrics: createMetrics(),
    maxPending: 1000,
    flushDelayMs: 1,
  });
  const docs = memoryDocStores();
  const configs = await ConfigService.open(docs, host, silentLogger);
  const twins = withConfigs(host, configs);
  return {
    host,
    configs,
    twins,
    async [Symbol.asyncDispose]() {
      await host.close();
      await transport[Symbol.asyncDispose]();
      await docs[Symbol.asyncDispose]();
    },
  };
}

const code = (re: string) => (err: unknown) => {
  assert.equal((err as TwinmillError).code, re, String(err));
  return true;
};

function twin(reported: Record<string, unknown>): TwinState {
  return {
    id: "t",
    version: 1,
    attributes: {},
    reported,
    desired: {},
    delta: {},
    metadata: { reported: {}, desired: {}, createdAt: 0, updatedAt: 0 },
    connectivity: { status: "unknown", since: null },
  };
}

const CONFIG: ConfigTemplate = {
  name: "press-defaults",
  selector: { type: "press" },
  desired: { sampleRate: 5, limits: { temp: 80 }, legacy: null },
  version: 2,
  createdAt: 0,
  updatedAt: 0,
};

Deno.test("selects: every selector attribute equal as text; missing attributes never match", () => {
  assert.equal(selects({ type: "press" }, { type: "press", site: "a" }), true);
  assert.equal(selects({ type: "press", site: "a" }, { type: "press", site: "b" }), false);
  assert.equal(selects({ line: "3" }, { line: 3 }), true);
  assert.equal(selects({ on: "true" }, { on: true }), true);
  assert.equal(selects({ site: "undefined" }, {}), false);
  assert.equal(selects({ site: "a" }, {}), false);
});

Deno.test("includes: deep subset of reported; null means absent; arrays compared whole", () => {
  const frag = { sampleRate: 5, limits: { temp: 80 }, legacy: null, modes: ["a", "b"] };
  const ok = { sampleRate: 5, limits: { temp: 80, rpm: 9 }, modes: ["a", "b"], other: 1 };
  assert.equal(includes(frag, ok), true);
  assert.equal(includes(frag, { ...ok, legacy: 1 }), false);
  assert.equal(includes(frag, { ...ok, sampleRate: "5" }), false);
  assert.equal(includes(frag, { ...ok, limits: { rpm: 9 } }), false);
  assert.equal(includes(frag, { ...ok, limits: 80 }), false);
  assert.equal(includes(frag, { ...ok, modes: ["a", "b", "c"] }), false);
  assert.equal(includes({ a: { b: { c: 1 } } }, { a: { b: { c: 1, d: 2 } } }), true);
  assert.equal(includes({ a: { x: [1, { y: 2 }] } }, { a: { x: [1, { y: 2 }] } }), true);
});

Deno.test("configStateOf: failed only for the current version; else applied or pending", () => {
  const good = { sampleRate: 5, limits: { temp: 80 } };
  assert.deepEqual(configStateOf(CONFIG, twin(good)), { state: "applied" });
  assert.deepEqual(configStateOf(CONFIG, twin({ sampleRate: 4 })), { state: "pending" });
  const failed = (version: number) => ({
    configStatus: { "press-defaults": { version, state: "failed", error: "rate too high" } },
  });
  assert.deepEqual(configStateOf(CONFIG, twin(failed(2))), {
    state: "failed",
    error: "rate too high",
  });
  // a failure of an older version does not count: the new version is pending
  assert.deepEqual(configStateOf(CONFIG, twin(failed(1))), { state: "pending" });
  // the device's word for this version wins over matching values
  assert.deepEqual(configStateOf(CONFIG, twin({ ...good, ...failed(2) })).state, "failed");
});

Deno.test("parseConfig: names the bad field", () => {
  const bad: Array<[unknown, RegExp]> = [
    [[], /body must be a JSON object/],
    [{ selector: {}, desired: { a: 1 } }, /selector: name at least one/],
    [{ selector: { line: 3 }, desired: { a: 1 } }, /selector\.line: must be a string/],
    [{ selector: "type=press", desired: { a: 1 } }, /selector: must be an object/],
    [{ selector: { type: "press" } }, /desired: must be a JSON object/],
    [{ selector: { type: "press" }, desired: {} }, /desired: must set at least one key/],
    [{ selector: { type: "press" }, desired: { configStatus: {} } }, /reserved/],
    [{ selector: { type: "press" }, desired: { a: 1 }, selecter: {} }, /selecter: unknown/],
  ];
  for (const [body, re] of bad) {
    assert.throws(() => parseConfig(body), (err: TwinmillError) => {
      assert.equal(err.code, "config_invalid");
      assert.match(err.message, re);
      return true;
    });
  }
  let deep: Record<string, unknown> = { x: 1 };
  for (let i = 0; i < 40; i++) deep = { d: deep };
  assert.throws(
    () => parseConfig({ selector: { a: "b" }, desired: deep }),
    /nested deeper than 32/,
  );
  assert.throws(
    () => parseConfig({ selector: { a: "b" }, desired: { x: "y".repeat(MAX_FRAGMENT_BYTES) } }),
    code("config_too_large"),
  );
  const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"]));
  assert.throws(() => parseConfig({ selector: many, desired: { a: 1 } }), /at most 16/);
});

Deno.test("put: applies to matching twins only; versions bump on change, not on a same PUT", async () => {
  await using s = await setup();
  await s.host.putAttributes("p1", { type: "press", site: "a" });
  await s.host.putAttributes("p2", { type: "press", site: "b" });
  await s.host.putAttributes("r1", { type: "robot", site: "a" });
  const body = { selector: { type: "press" }, desired: { sampleRate: 5 } };
  const first = await s.configs.put("press", body);
  assert.equal(first.created, true);
  assert.equal(first.config.version, 1);
  assert.deepEqual(first.applied, { twins: 2, changed: 2, failed: 0, errors: [] });
  const marker = (v: number) => ({ configStatus: { press: { version: v } } });
  assert.deepEqual((await s.host.get("p1"))!.desired, { sampleRate: 5, ...marker(1) });
  assert.deepEqual((await s.host.get("p2"))!.desired, { sampleRate: 5, ...marker(1) });
  assert.deepEqual((await s.host.get("r1"))!.desired, {});
  assert.equal((await s.host.get("r1"))!.version, 1);

  const again = await s.configs.put("press", body);
  assert.equal(again.created, false);
  assert.equal(again.config.version, 1);
  assert.deepEqual(again.applied, { twins: 2, changed: 0, failed: 0, errors: [] });
  assert.equal((await s.host.get("p1"))!.version, 2); // no new patch

  const changed = await s.configs.put("press", {
    selector: { type: "press" },
    desired: { sampleRate: 10 },
  });
  assert.equal(changed.config.version, 2);
  assert.equal(changed.config.createdAt, first.config.createdAt);
  assert.deepEqual((await s.host.get("p2"))!.desired, { sampleRate: 10, ...marker(2) });
});

Deno.test("put: If-Match stale is version_conflict; a lost compare-and-set is retried", async () => {
  await using s = await setup();
  const body = { selector: { type: "press" }, desired: { a: 1 } };
  await assert.rejects(s.configs.put("c", body, 1), code("version_conflict"));
  await s.configs.put("c", body);
  await assert.rejects(
    s.configs.put("c", { ...body, desired: { a: 2 } }, 7),
    /Config "c" is at version 1, not 7/,
  );
  assert.equal((await s.configs.put("c", { ...body, desired: { a: 2 } }, 1)).config.version, 2);

  // a store whose first conditional write loses to someone else's
  const docs = memoryDocStores();
  const store = await docs.open<ConfigTemplate>("configs");
  let raced = false;
  const racing = {
    ...store,
    async put(key: string, value: ConfigTemplate, version?: string | number | null) {
      if (!raced) {
        raced = true;
        await store.put(key, { ...value, desired: { other: true } });
      }
      return store.put(key, value, version);
    },
  };
  const svc = new ConfigService({ store: racing, twins: s.host, logger: silentLogger });
  const r = await svc.put("c", body);
  assert.equal(r.created, false, "the retry saw the other writer's document");
  assert.equal(r.config.version, 2);
  assert.deepEqual((await svc.get("c"))!.desired, { a: 1 });

  const always = { ...store, put: () => Promise.resolve(false) };
  const stuck = new ConfigService({ store: always, twins: s.host, logger: silentLogger });
  await assert.rejects(stuck.put("d", body), code("config_conflict"));
});

Deno.test("withConfigs: a newly provisioned twin gets the matching configs; a re-PUT does not re-apply", async () => {
  await using s = await setup();
  await s.configs.put("b-site", { selector: { site: "a" }, desired: { tz: "UTC", fan: "low" } });
  await s.configs.put("a-press", { selector: { type: "press" }, desired: { fan: "high" } });
  const created = await s.twins.putAttributes("p1", { type: "press", site: "a" });
  assert.equal(created.version, 1, "resolves with the twin as provisioned");
  const t = (await s.twins.get("p1"))!;
  // name order: a-press, then b-site overrides fan
  assert.deepEqual(t.desired, {
    fan: "low",
    tz: "UTC",
    configStatus: { "a-press": { version: 1 }, "b-site": { version: 1 } },
  });
  assert.equal(t.version, 3);
  // the operator changes desired; re-provisioning with the same attributes keeps it
  await s.twins.patchDesired("p1", { fan: "off" });
  await s.twins.putAttributes("p1", { type: "press", site: "a", line: "2" });
  assert.equal((await s.twins.get("p1"))!.desired.fan, "off");
  // a twin moving into a selector gets that config
  await s.twins.putAttributes("r1", { type: "robot", site: "b" });
  assert.deepEqual((await s.twins.get("r1"))!.desired, {});
  await s.twins.putAttributes("r1", { type: "robot", site: "a" });
  assert.equal((await s.twins.get("r1"))!.desired.tz, "UTC");
  // other methods are the host's own
  assert.equal((await s.twins.list(undefined, 10, { type: "robot" })).items.length, 1);
});

Deno.test("status: counts applied, pending, failed of the targeted twins", async () => {
  await using s = await setup();
  for (let i = 0; i < 30; i++) await s.host.putAttributes(`t${i}`, { type: "press" });
  await s.host.putAttributes("other", { type: "robot" });
  // no devices in a unit test: a view of the host whose twins report what devices would
  const reported = new Map<string, Record<string, unknown>>();
  for (let i = 0; i < 10; i++) reported.set(`t${i}`, { rate: 5 });
  reported.set("t10", { rate: 5, old: true });
  reported.set("t11", { configStatus: { c: { version: 1, state: "failed", error: "no" } } });
  const view = {
    patchDesired: s.host.patchDesired.bind(s.host),
    list: async (after: string | undefined, limit: number, f: Record<string, string>) => {
      const page = await s.host.list(after, limit, f);
      return {
        ...page,
        items: page.items.map((t) => ({ ...t, reported: reported.get(t.id) ?? {} })),
      };
    },
  };
  const svc = new ConfigService({
    store: await memoryDocStores().open("configs"),
    twins: view as unknown as TwinService,
    logger: silentLogger,
  });
  await svc.put("c", { selector: { type: "press" }, desired: { rate: 5, old: null } });
  const st = await svc.status("c");
  assert.equal(st.targeted, 30);
  assert.equal(st.applied, 10);
  assert.equal(st.failed, 1);
  assert.equal(st.pending, 19);
  assert.deepEqual(st.sample.failed, [{ id: "t11", error: "no" }]);
  assert.ok(st.sample.pending.includes("t10"));
  assert.equal(st.sample.pending.length, 19);
  await assert.rejects(s.configs.status("nope"), code("config_not_found"));
});

Deno.test("status: with a visibility filter (a site scope), only those twins are counted and named", async () => {
  await using s = await setup();
  for (const [id, site] of [["a1", "A"], ["a2", "A"], ["b1", "B"]]) {
    await s.host.putAttributes(id, { type: "press", site });
  }
  await s.configs.put("c", { selector: { type: "press" }, desired: { rate: 5 } });
  const st = await s.configs.status("c", (t) => t.attributes.site === "A");
  assert.equal(st.targeted, 2);
  assert.equal(st.pending, 2); // no device reports in a unit test
  assert.deepEqual(st.sample.pending.sort(), ["a1", "a2"]);
  assert.ok(!JSON.stringify(st).includes("b1"));
  assert.equal((await s.configs.status("c")).targeted, 3);
});

Deno.test("apply: a failed patch is counted with its twin; the others are applied; re-provisioning heals it", async () => {
  await using s = await setup();
  for (const id of ["a", "b", "c"]) await s.host.putAttributes(id, { type: "press" });
  const flaky = {
    list: s.host.list.bind(s.host),
    patchDesired: (id: string, patch: Record<string, unknown>) =>
      id === "b" ? Promise.reject(new Error("mailbox full")) : s.host.patchDesired(id, patch),
  };
  const store = await memoryDocStores().open<ConfigTemplate>("configs");
  const svc = new ConfigService({
    store,
    twins: flaky as unknown as TwinService,
    logger: silentLogger,
    concurrency: 2,
  });
  const r = await svc.put("c", { selector: { type: "press" }, desired: { x: 1 } });
  assert.deepEqual(r.applied, {
    twins: 2,
    changed: 2,
    failed: 1,
    errors: [{ id: "b", error: "mailbox full" }],
  });
  assert.deepEqual((await s.host.get("b"))!.desired, {});
  // re-provisioning the twin gives it the version it missed
  const healthy = new ConfigService({ store, twins: s.host, logger: silentLogger });
  await withConfigs(s.host, healthy).putAttributes("b", { type: "press" });
  assert.deepEqual((await s.host.get("b"))!.desired, { x: 1, configStatus: { c: { version: 1 } } });
});

Deno.test("names: bad ones are bad_config_name; delete reports whether it existed", async () => {
  await using s = await setup();
  await assert.rejects(s.configs.put("has space", {}), code("bad_config_name"));
  await assert.rejects(s.configs.get("x".repeat(65)), code("bad_config_name"));
  assert.equal(await s.configs.delete("none"), false);
  await s.configs.put("c", { selector: { a: "b" }, desired: { x: 1 } });
  assert.deepEqual((await s.configs.list()).map((c) => c.name), ["c"]);
  assert.equal(await s.configs.delete("c"), true);
  assert.deepEqual(await s.configs.list(), []);
});
