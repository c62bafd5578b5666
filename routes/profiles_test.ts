import assert from "node:assert/strict";
import { OpenAPIHono } from "@hono/zod-openapi";
import { parseProfile } from "../actors/rules/mod.ts";
import { fingerprint } from "../actors/rules/hash.ts";
import { BadRequestError } from "../src/errors.ts";
import { silentLogger } from "../src/obs/log.ts";
import type { ProfileService, ProfileView, RuleFaultStatus } from "../src/rules/service.ts";
import { errorHandler } from "./errors.ts";
import { profileRoutes } from "./profiles.ts";

const T0 = Date.UTC(2024, 4, 1, 12, 0, 0);

/** A profile service in memory: validates with the rules engine, time moves 1 s per change. */
function fakeProfiles(): ProfileService & {
  calls: string[];
  fault(name: string, f: RuleFaultStatus): void;
} {
  const profiles = new Map<string, ProfileView>();
  let now = T0;
  const calls: string[] = [];
  return {
    calls,
    fault: (name, f) => profiles.get(name)!.status.rules.push(f),
    list: () => Promise.resolve([...profiles.values()].sort((a, b) => a.name < b.name ? -1 : 1)),
    get: (name) => Promise.resolve(profiles.get(name) ?? null),
    put(name, body) {
      calls.push(`put ${name}`);
      const r = parseProfile(body);
      if (!r.ok) {
        const first = r.issues[0];
        throw new BadRequestError(`${first.path}: ${first.message}`, "profile_invalid");
      }
      const created = !profiles.has(name);
      const { rules, description } = r.profile.source;
      const profile = description === undefined ? { rules } : { description, rules };
      const view = {
        name,
        profile,
        updatedAt: now += 1000,
        hash: fingerprint(profile),
        status: { rules: [] as RuleFaultStatus[] },
      };
      profiles.set(name, view);
      return Promise.resolve({ created, profile: view });
    },
    delete: (name) => Promise.resolve(profiles.delete(name)),
  };
}

function setup() {
  const svc = fakeProfiles();
  const app = new OpenAPIHono();
  app.onError(errorHandler(silentLogger));
  app.route("/v1/profiles", profileRoutes(svc));
  return { app, svc, req: (path: string, init?: RequestInit) => app.request(path, init) };
}

const put = (body: unknown, headers: Record<string, string> = {}) => ({
  method: "PUT",
  headers: { "content-type": "application/json", ...headers },
  body: typeof body === "string" ? body : JSON.stringify(body),
});

const overheat = {
  rules: [{ id: "overheat", kind: "threshold", field: "temp", op: ">", value: 80, clear: 75 }],
};

async function assertError(r: Response, status: number, code: string, message?: RegExp) {
  assert.equal(r.status, status);
  const body = await r.json();
  assert.deepEqual(Object.keys(body), ["error"]);
  assert.deepEqual(Object.keys(body.error).sort(), ["code", "message"]);
  assert.equal(body.error.code, code, body.error.message);
  if (message) assert.match(body.error.message, message);
}

Deno.test("PUT creates (201) then replaces (200); the view has ISO updatedAt and a hash", async () => {
  const t = setup();
  const r1 = await t.req("/v1/profiles/press", put(overheat));
  assert.equal(r1.status, 201);
  const v1 = await r1.json();
  assert.deepEqual(Object.keys(v1).sort(), ["hash", "name", "profile", "status", "updatedAt"]);
  assert.equal(v1.name, "press");
  assert.equal(v1.updatedAt, "2024-05-01T12:00:01.000Z");
  assert.equal(v1.profile.rules[0].severity, "major"); // defaults filled in by the service
  assert.match(v1.hash, /^[0-9a-f]{8}$/);

  const r2 = await t.req(
    "/v1/profiles/press",
    put({ description: "Presses", rules: overheat.rules }),
  );
  assert.equal(r2.status, 200);
  const v2 = await r2.json();
  assert.equal(v2.updatedAt, "2024-05-01T12:00:02.000Z");
  assert.notEqual(v2.hash, v1.hash);

  const got = await t.req("/v1/profiles/press");
  assert.equal(got.status, 200);
  assert.deepEqual(await got.json(), v2);
  assert.deepEqual(v2.status, { rules: [] });
});

Deno.test("rule faults in the view: their time is ISO too", async () => {
  const t = setup();
  await t.req("/v1/profiles/press", put(overheat));
  t.svc.fault("press", { rule: "overheat", faults: 3, lastFault: "temp is a string", at: T0 + 5 });
  const { status } = await (await t.req("/v1/profiles/press")).json();
  assert.deepEqual(status, {
    rules: [{
      rule: "overheat",
      faults: 3,
      lastFault: "temp is a string",
      at: "2024-05-01T12:00:00.005Z",
    }],
  });
  const { items } = await (await t.req("/v1/profiles")).json();
  assert.equal(items[0].status.rules[0].at, "2024-05-01T12:00:00.005Z");
});

Deno.test("GET / lists every profile in name order; empty list when there are none", async () => {
  const t = setup();
  assert.deepEqual(await (await t.req("/v1/profiles")).json(), { items: [] });
  for (const name of ["oven", "line.3", "A_b-c"]) {
    await t.req(`/v1/profiles/${name}`, put(overheat));
  }
  const r = await t.req("/v1/profiles");
  assert.equal(r.status, 200);
  const { items } = await r.json();
  assert.deepEqual(items.map((p: ProfileView) => p.name), ["A_b-c", "line.3", "oven"]);
  for (const p of items) assert.match(p.updatedAt, /^2024-05-01T12:00:0\d\.000Z$/);
});

Deno.test("unknown profile: GET and DELETE -> 404 profile_not_found; DELETE -> 204 once", async () => {
  const t = setup();
  await assertError(await t.req("/v1/profiles/nope"), 404, "profile_not_found", /"nope"/);
  await t.req("/v1/profiles/press", put(overheat));
  const del = await t.req("/v1/profiles/press", { method: "DELETE" });
  assert.equal(del.status, 204);
  assert.equal(await del.text(), "");
  await assertError(
    await t.req("/v1/profiles/press", { method: "DELETE" }),
    404,
    "profile_not_found",
  );
  await assertError(await t.req("/v1/profiles/press"), 404, "profile_not_found");
});

Deno.test("bad names -> 400 bad_profile_name on every method, and the service is not asked", async () => {
  const t = setup();
  const bad = ["bad%20name", "x".repeat(65), "a%2Fb", "a%3Ab", "%C3%BC", "a*"];
  for (const name of bad) {
    for (const init of [undefined, put(overheat), { method: "DELETE" }]) {
      const r = await t.req(`/v1/profiles/${name}`, init);
      await assertError(r, 400, "bad_profile_name", /^name: profile name must be 1-64/);
    }
  }
  assert.deepEqual(t.svc.calls, []);
  const longest = "x".repeat(64);
  assert.equal((await t.req(`/v1/profiles/${longest}`, put(overheat))).status, 201);
  assert.equal((await t.req("/v1/profiles/a.b_c-D9", put(overheat))).status, 201);
});

Deno.test("PUT bodies: invalid profile -> the service's 400; not JSON or not an object -> 400", async () => {
  const t = setup();
  const invalid = { rules: [{ ...overheat.rules[0], op: "~" }] };
  await assertError(
    await t.req("/v1/profiles/press", put(invalid)),
    400,
    "profile_invalid",
    /^rules\[0\]\.op: /,
  );
  await assertError(await t.req("/v1/profiles/press", put("{nope")), 400, "bad_request");
  await assertError(await t.req("/v1/profiles/press", put([overheat])), 400, "bad_request");
  await assertError(await t.req("/v1/profiles/press", put("42")), 400, "bad_request");
  assert.deepEqual(t.svc.calls, ["put press"]); // only the JSON object reached the service
});

Deno.test("OpenAPI document has the profile paths and the Profile schema", () => {
  const app = new OpenAPIHono();
  app.route("/v1/profiles", profileRoutes(fakeProfiles()));
  const doc = app.getOpenAPIDocument({ openapi: "3.0.3", info: { title: "t", version: "1" } });
  assert.deepEqual(Object.keys(doc.paths).sort(), ["/v1/profiles", "/v1/profiles/{name}"]);
  assert.ok(doc.paths["/v1/profiles"].get);
  const one = doc.paths["/v1/profiles/{name}"];
  assert.ok(one.get && one.put && one.delete);
  assert.deepEqual(Object.keys(one.put.responses).sort(), ["200", "201", "400", "413"]);
  assert.deepEqual(Object.keys(one.delete.responses).sort(), ["204", "400", "404"]);
  assert.equal(one.get.parameters?.[0] && "name" in one.get.parameters[0], true);
  const schemas = doc.components?.schemas ?? {};
  for (const s of ["Profile", "ProfileList", "ProfileDocument", "Error"]) {
    assert.ok(schemas[s], `missing schema ${s}`);
  }
  // the rule kinds are documented through the rules engine's own schema
  assert.match(JSON.stringify(schemas.Profile), /"threshold"/);
});
