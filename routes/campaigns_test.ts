import assert from "node:assert/strict";
import { OpenAPIHono } from "@hono/zod-openapi";
import { campaignRoutes } from "./campaigns.ts";
import { errorHandler } from "./errors.ts";
import { CampaignService } from "../src/mgmt/campaign_service.ts";
import { CampaignStore } from "../src/mgmt/campaign_store.ts";
import { memoryDocStores } from "../src/persistence/doc_store.ts";
import { memoryTransport } from "../src/transport/memory.ts";
import { ManualClock } from "../src/runtime/clock.ts";
import { createLogger } from "../src/obs/log.ts";

const FW = { id: "press-2.0.0", version: "2.0.0", size: 10, sha256: "ab".repeat(32) };

async function app() {
  const log = createLogger("error");
  const svc = new CampaignService({
    store: await CampaignStore.open(memoryDocStores()),
    firmware: { get: (id) => Promise.resolve(id === FW.id ? FW : null) },
    transport: memoryTransport(),
    clock: new ManualClock(Date.parse("2024-05-03T12:00:00Z")),
    logger: log,
  });
  const a = new OpenAPIHono();
  a.onError(errorHandler(log));
  a.route("/v1/campaigns", campaignRoutes(svc));
  a.doc("/openapi.json", { openapi: "3.0.3", info: { title: "t", version: "0" } });
  return a;
}

const post = (body: unknown): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

const BODY = { name: "presses", firmware: FW.id, selector: { type: "press" } };

Deno.test("campaign routes: create with defaults, read, list", async () => {
  const a = await app();
  const r = await a.request("/v1/campaigns", post(BODY));
  assert.equal(r.status, 201);
  const c = await r.json();
  assert.match(c.id, /^c-[0-9a-z]+-[0-9a-f]{8}$/);
  assert.equal(c.state, "scheduled");
  assert.deepEqual(c.plan, [{ percent: 100 }]);
  assert.equal(c.successThreshold, 1);
  assert.equal(c.errorThreshold, 0.2);
  assert.deepEqual(c.firmware, FW);
  assert.equal(c.currentWave, null);
  assert.equal(c.createdAt, "2024-05-03T12:00:00.000Z");
  const got = await (await a.request(`/v1/campaigns/${c.id}`)).json();
  assert.deepEqual(got, c);
  const list = await (await a.request("/v1/campaigns")).json();
  assert.deepEqual(list.items.map((x: { id: string }) => x.id), [c.id]);
  const devs = await (await a.request(`/v1/campaigns/${c.id}/devices`)).json();
  assert.deepEqual(devs, { items: [] }, "no targets before it starts");
});

Deno.test("campaign routes: invalid bodies name the field", async () => {
  const a = await app();
  const cases: [unknown, RegExp][] = [
    [{ ...BODY, waves: [] }, /^waves: /],
    [{ ...BODY, waves: [{ count: 0 }] }, /^waves\.0/],
    [{ ...BODY, waves: [{ count: 1, percent: 5 }] }, /^waves\.0/],
    [{ ...BODY, successThreshold: 0 }, /^successThreshold: /],
    [{ ...BODY, selector: {} }, /^selector: give 1-16 attributes/],
    [{ ...BODY, maintenanceWindow: { start: "25:00", end: "04:00" } }, /maintenanceWindow\.start/],
    [{ ...BODY, maintenanceWindow: { start: "22:00", end: "04:00", tz: "X/Y" } }, /time zone/],
    [{ ...BODY, extra: 1 }, /extra/],
    [{ ...BODY, startAt: "tomorrow" }, /^startAt: /],
  ];
  for (const [body, message] of cases) {
    const r = await a.request("/v1/campaigns", post(body));
    const e = await r.json();
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal(e.error.code, "campaign_invalid", JSON.stringify(e));
    assert.match(e.error.message, message);
  }
  const missing = await a.request("/v1/campaigns", post({ ...BODY, firmware: "nope-1" }));
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).error.code, "firmware_not_found");
  const badId = await a.request("/v1/campaigns/a%20b");
  assert.equal((await badId.json()).error.code, "bad_campaign_id");
  const badCursor = await a.request("/v1/campaigns/x/devices?cursor=abc");
  assert.equal(badCursor.status, 400);
});

Deno.test("campaign routes: pause, resume, cancel, delete and their conflicts", async () => {
  const a = await app();
  const { id } = await (await a.request("/v1/campaigns", post(BODY))).json();
  const act = (verb: string) => a.request(`/v1/campaigns/${id}/${verb}`, { method: "POST" });
  assert.equal((await (await act("pause")).json()).state, "paused");
  const twice = await act("pause");
  assert.equal(twice.status, 409);
  assert.deepEqual((await twice.json()).error, {
    code: "campaign_state_conflict",
    message: `Campaign "${id}" is paused; it cannot be paused`,
  });
  assert.equal((await (await act("resume")).json()).state, "scheduled", "it had not started");
  const del = await a.request(`/v1/campaigns/${id}`, { method: "DELETE" });
  assert.equal(del.status, 409);
  assert.equal((await (await act("cancel")).json()).state, "cancelled");
  assert.equal((await a.request(`/v1/campaigns/${id}`, { method: "DELETE" })).status, 204);
  const gone = await a.request(`/v1/campaigns/${id}`);
  assert.equal(gone.status, 404);
  assert.equal((await gone.json()).error.code, "campaign_not_found");
});

Deno.test("campaign routes: every route is in the OpenAPI document", async () => {
  const a = await app();
  const doc = await (await a.request("/openapi.json")).json();
  assert.deepEqual(Object.keys(doc.paths).sort(), [
    "/v1/campaigns",
    "/v1/campaigns/{id}",
    "/v1/campaigns/{id}/cancel",
    "/v1/campaigns/{id}/devices",
    "/v1/campaigns/{id}/pause",
    "/v1/campaigns/{id}/resume",
  ]);
  assert.ok(doc.components.schemas.Campaign);
  assert.ok(doc.components.schemas.CampaignDevice);
});
