import assert from "node:assert/strict";
import { memoryDocStores } from "../persistence/doc_store.ts";
import { silentLogger } from "../obs/log.ts";
import type { AuditInput } from "../security/audit_entry.ts";
import type { JsonObject } from "../../actors/json.ts";
import type { TwinState } from "../../actors/twin.ts";
import { TwinmillError } from "../errors.ts";
import { keyIdOf } from "./provisioning_checks.ts";
import { Provisioning, type ProvisioningOptions } from "./provisioning.ts";

const T0 = Date.UTC(2024, 4, 1, 12);
const DAY = 86_400_000;

/** Twins in a map (put = create or replace attributes, version + 1). */
function fakeTwins(fail?: (id: string) => boolean) {
  const m = new Map<string, TwinState>();
  return {
    map: m,
    get: (id: string) => Promise.resolve(m.get(id) ?? null),
    putAttributes(id: string, attributes: JsonObject) {
      if (fail?.(id)) return Promise.reject(new Error("store down"));
      const cur = m.get(id);
      const s = { id, version: (cur?.version ?? 0) + 1, attributes } as unknown as TwinState;
      m.set(id, s);
      return Promise.resolve(s);
    },
  };
}

async function setup(opts: Partial<ProvisioningOptions> & { fail?: (id: string) => boolean } = {}) {
  const clock = {
    t: T0,
    now() {
      return this.t;
    },
  };
  const twins = fakeTwins(opts.fail);
  const audit: AuditInput[] = [];
  let n = 0;
  const issued: string[] = [];
  const docs = opts.docs ?? memoryDocStores();
  const p = await Provisioning.open({
    docs,
    twins,
    credentials: {
      create(twin) {
        const token = `tok-${twin}-${++n}`;
        issued.push(token);
        return Promise.resolve({
          id: `cred_${String(n).padStart(12, "0")}`,
          credentials: { type: "token", username: twin, token },
          createdAt: clock.t,
        });
      },
    },
    audit: { record: (e) => void audit.push(e) },
    logger: silentLogger,
    clock,
    ...opts,
  });
  return { p, clock, twins, audit, issued, docs };
}

async function refused(pr: Promise<unknown>, code: string, status: number) {
  await assert.rejects(pr, (err: unknown) => {
    assert.ok(err instanceof TwinmillError, String(err));
    assert.equal(err.code, code, err.message);
    assert.equal(err.status, status);
    return true;
  });
}

Deno.test("createKey: secret shown once, stored only as a hash; bad specs refused", async () => {
  const { p, docs } = await setup();
  const { key, secret } = await p.createKey({ name: "line 3", template: { site: "a" } });
  assert.match(secret, /^tmpk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
  assert.equal(keyIdOf(secret), key.id);
  assert.equal(key.quota, 100);
  assert.equal(key.used, 0);
  assert.equal(key.expiresAt, T0 + 30 * DAY);
  assert.ok(!("hash" in key));
  const stored = await (await docs.open("provisioning_keys")).get(key.id);
  assert.ok(!JSON.stringify(stored).includes(secret.slice(18)), "no secret in the store");
  assert.deepEqual((await p.listKeys()).map((k) => k.id), [key.id]);
  assert.equal((await p.getKey(key.id))?.name, "line 3");

  const bad = (spec: Parameters<typeof p.createKey>[0], code: string) =>
    refused(p.createKey(spec), code, 400);
  await bad({ name: "" }, "bad_provisioning_key");
  await bad({ name: "q", quota: 0 }, "bad_provisioning_key");
  await bad({ name: "q", quota: 100_001 }, "bad_provisioning_key");
  await bad({ name: "e", expiresAt: T0 - 1 }, "bad_provisioning_key");
  await bad({ name: "e", expiresAt: T0 + 366 * DAY }, "bad_provisioning_key");
  await bad({ name: "p", allow: ["press/1"] }, "bad_pattern");
  await bad({ name: "p", deny: Array(101).fill("x") }, "bad_pattern");
  await bad({ name: "t", template: { attributes: { site: "b" } } }, "bad_template");
  await bad({ name: "t", template: { attributes: { x: { y: 1 } as never } } }, "bad_template");

  assert.equal(await p.deleteKey(key.id), true);
  assert.equal(await p.deleteKey(key.id), false);
  assert.equal(await p.getKey(key.id), null);
});

Deno.test("provision: a new device gets a token, the template's attributes, and an audit entry", async () => {
  const { p, twins, audit, issued } = await setup();
  const { key, secret } = await p.createKey({
    name: "presses",
    template: { type: "press", site: "plant-a", attributes: { line: "3" } },
    allow: ["press-*"],
  });
  const a = await p.provision(secret, { id: "press-1", attributes: { fw: "1.0", site: "x" } }, {
    via: "http",
  });
  assert.equal(a.status, "ok");
  assert.equal(a.id, "press-1");
  assert.deepEqual(a.credentials, { type: "token", username: "press-1", token: issued[0] });
  assert.deepEqual(a.ignoredAttributes, ["site"]);
  assert.equal(a.mqtt.topics.telemetry, "twins/press-1/telemetry");
  const t = twins.map.get("press-1")!;
  assert.equal(t.attributes.site, "plant-a");
  assert.equal(t.attributes.type, "press");
  assert.equal(t.attributes.line, "3");
  assert.equal(t.attributes.fw, "1.0");
  assert.equal(t.attributes.provisionedBy, key.id);
  assert.equal((await p.getKey(key.id))?.used, 1);
  assert.equal((await p.getKey(key.id))?.lastUsedAt, T0);
  assert.equal(audit.length, 1);
  assert.equal(audit[0].actor, `provisioning-key:${key.id}`);
  assert.equal(audit[0].action, "provision");
  assert.equal(audit[0].result, "ok");
  assert.equal(audit[0].target, "press-1");
  const text = JSON.stringify(audit);
  assert.ok(!text.includes(secret) && !text.includes(issued[0]), "no secret in the audit");
});

Deno.test("provision: refused with a wrong, expired or exhausted key, a denied or bad id, an existing twin", async () => {
  const { p, clock, audit, twins } = await setup();
  const { key, secret } = await p.createKey({
    name: "k",
    quota: 2,
    deny: ["press-13"],
    expiresAt: T0 + DAY,
  });
  const http = { via: "http" as const };
  await refused(p.provision("nope", { id: "a" }, http), "provisioning_key_invalid", 401);
  const forged = secret.slice(0, -4) + (secret.endsWith("AAAA") ? "BBBB" : "AAAA");
  await refused(p.provision(forged, { id: "a" }, http), "provisioning_key_invalid", 401);
  await refused(p.provision(secret, { id: "a/b" }, http), "bad_twin_id", 400);
  await refused(p.provision(secret, { id: "a", attributes: [1] }, http), "bad_attributes", 400);
  await refused(p.provision(secret, { id: "press-13" }, http), "device_not_allowed", 403);
  await twins.putAttributes("old-1", {});
  await refused(p.provision(secret, { id: "old-1" }, http), "twin_exists", 409);
  assert.equal((await p.getKey(key.id))?.used, 0, "refusals take no quota");

  await p.provision(secret, { id: "press-1" }, http);
  await p.provision(secret, { id: "press-2" }, http);
  await refused(p.provision(secret, { id: "press-3" }, http), "provisioning_quota_exhausted", 403);
  assert.equal(twins.map.has("press-3"), false);

  const other = await p.createKey({ name: "short", expiresAt: T0 + 1000 });
  clock.t = T0 + 1000;
  await refused(p.provision(other.secret, { id: "x-1" }, http), "provisioning_key_expired", 401);
  assert.equal(await p.check(other.secret), "provisioning_key_expired");
  assert.equal(await p.check(secret), null);
  assert.equal(await p.check("tmpk_nope"), "provisioning_key_invalid");

  await p.deleteKey(key.id);
  await refused(p.provision(secret, { id: "press-9" }, http), "provisioning_key_invalid", 401);

  const denied = audit.filter((e) => e.result === "denied").map((e) => e.detail?.code);
  assert.deepEqual(denied, [
    "provisioning_key_invalid",
    "provisioning_key_invalid",
    "bad_twin_id",
    "bad_attributes",
    "device_not_allowed",
    "twin_exists",
    "provisioning_quota_exhausted",
    "provisioning_key_expired",
    "provisioning_key_expired",
    "provisioning_key_invalid",
    "provisioning_key_invalid",
  ]);
  assert.equal(audit.filter((e) => e.result === "ok").length, 2);
});

Deno.test("provision: a re-provisioning key replaces an existing twin's attributes", async () => {
  const { p, twins } = await setup();
  await twins.putAttributes("press-1", { site: "old" });
  const { secret } = await p.createKey({ name: "r", reprovision: true, template: { site: "new" } });
  const a = await p.provision(secret, { id: "press-1" }, { via: "http" });
  assert.equal(a.status, "ok");
  assert.equal(twins.map.get("press-1")?.attributes.site, "new");
});

Deno.test("provision: a failure after taking quota gives it back", async () => {
  const { p } = await setup({ fail: (id) => id === "bad-1" });
  const { key, secret } = await p.createKey({ name: "f", quota: 1 });
  await assert.rejects(p.provision(secret, { id: "bad-1" }, { via: "http" }), /store down/);
  assert.equal((await p.getKey(key.id))?.used, 0);
  assert.equal((await p.provision(secret, { id: "good-1" }, { via: "http" })).status, "ok");
});

Deno.test("provision: two nodes sharing the store never issue more than the quota", async () => {
  const docs = memoryDocStores();
  const a = await setup({ docs });
  const b = await setup({ docs });
  const { key, secret } = await a.p.createKey({ name: "race", quota: 7 });
  const results = await Promise.allSettled(
    Array.from(
      { length: 40 },
      (_, i) => (i % 2 ? a.p : b.p).provision(secret, { id: `dev-${i}` }, { via: "http" }),
    ),
  );
  const ok = results.filter((r) => r.status === "fulfilled").length;
  assert.equal(ok, 7);
  for (const r of results) {
    if (r.status === "rejected") {
      assert.equal((r.reason as TwinmillError).code, "provisioning_quota_exhausted");
    }
  }
  assert.equal((await a.p.getKey(key.id))?.used, 7);
  assert.equal(a.twins.map.size + b.twins.map.size, 7);
});

Deno.test("provision: the same new id twice at once creates it once", async () => {
  const { p, twins } = await setup();
  const { key, secret } = await p.createKey({ name: "dup" });
  const r = await Promise.allSettled([
    p.provision(secret, { id: "dev-1" }, { via: "mqtt" }),
    p.provision(secret, { id: "dev-1" }, { via: "mqtt" }),
  ]);
  assert.equal(r.filter((x) => x.status === "fulfilled").length, 1);
  const bad = r.find((x) => x.status === "rejected") as PromiseRejectedResult;
  assert.ok(["provisioning_in_progress", "twin_exists"].includes(bad.reason.code));
  assert.equal(twins.map.get("dev-1")?.version, 1);
  assert.equal((await p.getKey(key.id))?.used, 1);
});

Deno.test("handle (MQTT): JSON answers, the client id as default twin id", async () => {
  const { p, twins } = await setup();
  const { secret } = await p.createKey({ name: "m", template: { type: "sensor" } });
  const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
  const ok = await p.handle(secret, "sensor-9", enc({ attributes: { fw: "2" } }));
  assert.equal(ok.status, "ok");
  assert.equal(twins.map.get("sensor-9")?.attributes.type, "sensor");
  const again = await p.handle(secret, "sensor-9", enc({}));
  assert.deepEqual(again.status === "error" && again.error.code, "twin_exists");
  const junk = await p.handle(secret, "c1", new TextEncoder().encode("{nope"));
  assert.deepEqual(junk.status === "error" && junk.error.code, "bad_request");
  const arr = await p.handle(secret, "c1", enc([1]));
  assert.deepEqual(arr.status === "error" && arr.error.code, "bad_request");
  const wrong = await p.handle("tmpk_x", "c1", enc({ id: "a" }));
  assert.deepEqual(wrong.status === "error" && wrong.error.code, "provisioning_key_invalid");
});
