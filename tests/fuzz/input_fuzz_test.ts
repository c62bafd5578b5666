/**
 * Property-based fuzzing (`npm:fast-check`) of what the outside world sends: device topics and
 * payloads, HTTP paths, bodies and headers. The node answers every input clearly — a parsed
 * result or a named reason; an HTTP status below 500 with the error envelope — and never
 * throws. Case counts are fixed so the suite stays fast: 3 × 2,000 device inputs, 4 × 300
 * HTTP requests.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { parseDeviceBody, parseDeviceTopic } from "../../actors/validate.ts";
import { createApp } from "../../routes/app.ts";
import { systemClock } from "../../src/runtime/clock.ts";
import { silentLogger } from "../../src/obs/log.ts";
import { Profiles } from "../../src/rules/profiles.ts";
import { memoryProfileStore } from "../../src/rules/memory_profile_store.ts";
import { profileRoutes } from "../../routes/profiles.ts";
import { alarmRoutes } from "../../routes/alarms.ts";
import { memoryHost } from "../../src/runtime/testing.ts";

const enc = new TextEncoder();
const segment = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.constantFrom("twins", "telemetry", "reported", "status", "commands", "result", "+", "#", ""),
);
const topic = fc.array(segment, { maxLength: 6 }).map((s) => s.join("/"));
const jsonish = fc.oneof(
  fc.json({ maxDepth: 4 }),
  fc.string({ maxLength: 200 }),
  fc.constantFrom("online", "offline", "{", "[]", "null", '{"ts":"x"}', '{"a":1e999}'),
);

Deno.test("fuzz: any device topic parses or is rejected with a named reason", () => {
  fc.assert(
    fc.property(topic, (t) => {
      const r = parseDeviceTopic(t);
      assert.ok(typeof r === "string" || (typeof r.twin === "string" && r.twin.length > 0));
    }),
    { numRuns: 2000 },
  );
});

Deno.test("fuzz: any payload on a valid topic parses or is rejected, never throws", () => {
  const kinds = ["telemetry", "reported", "status", "commands/c1/result"];
  fc.assert(
    fc.property(fc.constantFrom(...kinds), fc.oneof(jsonish, fc.string()), (kind, body) => {
      const t = parseDeviceTopic(`twins/press-7/${kind}`);
      assert.ok(typeof t !== "string");
      const r = parseDeviceBody(t, enc.encode(body));
      assert.ok(typeof r === "string" || typeof r.kind === "string");
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      const t = parseDeviceTopic("twins/x/telemetry");
      assert.ok(typeof t !== "string");
      parseDeviceBody(t, bytes);
    }),
    { numRuns: 2000 },
  );
});

function app() {
  const { host, transport, metrics } = memoryHost();
  const profiles = new Profiles({
    store: memoryProfileStore(),
    logger: silentLogger,
    clock: systemClock,
  });
  const a = createApp({
    host,
    transport,
    metrics,
    logger: silentLogger,
    ready: () => true,
    extra: { "/v1/profiles": profileRoutes(profiles), "/v1/alarms": alarmRoutes(host) },
  });
  return { a, [Symbol.asyncDispose]: () => host.close() };
}

const seen = { ok: 0, refused: 0 };

async function clear(res: Response): Promise<void> {
  if (res.status < 300) seen.ok++;
  else seen.refused++;
  assert.ok(res.status < 500, `status ${res.status}: ${await res.clone().text()}`);
  if (res.status >= 400 && res.status !== 405) {
    const body = await res.json();
    assert.equal(typeof body.error?.code, "string", JSON.stringify(body));
    assert.equal(typeof body.error?.message, "string");
  } else await res.body?.cancel();
}

Deno.test("fuzz: HTTP bodies, paths and headers get a clear answer, never a 500", async () => {
  await using t = app();
  const path = fc.oneof(
    fc.constantFrom("/v1/twins/", "/v1/twins/x/desired", "/v1/profiles/", "/v1/alarms/"),
  ).chain((base) =>
    fc.string({ maxLength: 40 }).map((s) => base + encodeURIComponent(s).replaceAll("%2F", "/"))
  );
  const method = fc.constantFrom("GET", "PUT", "PATCH", "POST", "DELETE");
  await fc.assert(
    fc.asyncProperty(path, method, jsonish, async (p, m, body) => {
      const init: RequestInit = m === "GET" || m === "DELETE" ? { method: m } : {
        method: m,
        headers: { "content-type": "application/json" },
        body,
      };
      await clear(await t.a.request(p, init));
    }),
    { numRuns: 300 },
  );
  const attrs = fc.dictionary(
    fc.string({ minLength: 1, maxLength: 10 }),
    fc.oneof(fc.string({ maxLength: 10 }), fc.integer(), fc.boolean()),
    { maxKeys: 4 },
  ).map((attributes) => JSON.stringify({ attributes }));
  const profile = fc.record({
    rules: fc.array(
      fc.record({
        id: fc.stringMatching(/^[a-z]{1,8}$/),
        kind: fc.constantFrom("threshold", "deadband", "stale", "expression", "bogus"),
        field: fc.constantFrom("temp", "rpm", ""),
        op: fc.constantFrom(">", "<", "=>"),
        value: fc.oneof(fc.integer(), fc.string({ maxLength: 3 })),
        band: fc.nat(),
        seconds: fc.integer({ min: -1, max: 100 }),
        expr: fc.constantFrom("temp > 1", "temp >", "(rpm / 0) > 1", "a && b"),
      }, { requiredKeys: ["id", "kind"] }),
      { maxLength: 3 },
    ),
  }).map((p) => JSON.stringify(p));
  await fc.assert(
    fc.asyncProperty(fc.oneof(fc.json({ maxDepth: 5 }), attrs, profile), async (body) => {
      await clear(
        await t.a.request("/v1/twins/press-1", {
          method: "PUT",
          headers: { "content-type": "application/json" },
          body,
        }),
      );
      await clear(
        await t.a.request("/v1/profiles/p1", {
          method: "PUT",
          headers: { "content-type": "application/json" },
          body,
        }),
      );
    }),
    { numRuns: 300 },
  );
  await fc.assert(
    fc.asyncProperty(fc.string({ maxLength: 60 }), fc.string({ maxLength: 60 }), async (h, q) => {
      await clear(
        await t.a.request(`/v1/twins?${encodeURIComponent(q)}=1&limit=${encodeURIComponent(h)}`, {
          headers: { "if-match": h.replace(/[^\x20-\x7e]/g, "") },
        }),
      );
      await clear(await t.a.request(`/v1/alarms?state=${encodeURIComponent(q)}`));
    }),
    { numRuns: 300 },
  );
  // the inputs reached the handlers: some were accepted, some refused
  assert.ok(seen.ok > 20 && seen.refused > 50, JSON.stringify(seen));
});
