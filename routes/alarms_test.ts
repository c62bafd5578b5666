import assert from "node:assert/strict";
import { OpenAPIHono } from "@hono/zod-openapi";
import { ackAlarm, type Alarm, MAX_ACK_COMMENT } from "../actors/rules/mod.ts";
import { AlarmNotFoundError } from "../src/errors.ts";
import { silentLogger } from "../src/obs/log.ts";
import type { AlarmQuery, AlarmService } from "../src/rules/service.ts";
import { alarmRoutes } from "./alarms.ts";
import { errorHandler } from "./errors.ts";

const T0 = Date.UTC(2024, 4, 1, 12, 0, 0);

const alarm = (twin: string, rule: string, seq: number, more: Partial<Alarm> = {}): Alarm => ({
  id: `${twin}:${rule}:${seq}`,
  twin,
  rule,
  severity: "critical",
  state: "active",
  acknowledged: false,
  raisedAt: T0,
  clearedAt: null,
  value: 91,
  raiseCount: 1,
  updatedAt: T0,
  ...more,
});

/** An alarm service over a fixed list; remembers the queries and acks it was given. */
function fakeAlarms(alarms: Alarm[], next?: string) {
  const byId = new Map(alarms.map((a) => [a.id, a]));
  const queries: AlarmQuery[] = [];
  const acks: Array<[string, string | undefined]> = [];
  const svc: AlarmService = {
    listAlarms(q) {
      queries.push(q);
      return Promise.resolve({ items: [...byId.values()], ...(next ? { next } : {}) });
    },
    ackAlarm(id, comment) {
      acks.push([id, comment]);
      const a = byId.get(id);
      if (!a) return Promise.reject(new AlarmNotFoundError(id));
      const acked = ackAlarm(a, T0 + 60_000, comment);
      byId.set(id, acked);
      return Promise.resolve(acked);
    },
    ruleStatus: () => Promise.resolve(null),
  };
  return { svc, queries, acks };
}

function setup(alarms: Alarm[] = [], next?: string) {
  const fake = fakeAlarms(alarms, next);
  const app = new OpenAPIHono();
  app.onError(errorHandler(silentLogger));
  app.route("/v1/alarms", alarmRoutes(fake.svc));
  return { ...fake, req: (path: string, init?: RequestInit) => app.request(path, init) };
}

async function assertError(r: Response, status: number, code: string, message?: RegExp) {
  assert.equal(r.status, status);
  const body = await r.json();
  assert.deepEqual(Object.keys(body), ["error"]);
  assert.deepEqual(Object.keys(body.error).sort(), ["code", "message"]);
  assert.equal(body.error.code, code, body.error.message);
  if (message) assert.match(body.error.message, message);
}

const post = (body?: string, type: string | null = "application/json"): RequestInit => ({
  method: "POST",
  headers: type === null ? {} : { "content-type": type },
  body,
});

Deno.test("GET /v1/alarms: items with ISO times (null stays null, no ackedAt stays absent), next", async () => {
  const open = alarm("press-7", "overheat", 3);
  const cleared = alarm("line.3:press", "stale", 12, {
    severity: "warning",
    state: "cleared",
    acknowledged: true,
    raisedAt: T0 + 1,
    clearedAt: T0 + 2_000,
    ackedAt: T0 + 1_000,
    ackComment: "on it",
    value: null,
    updatedAt: T0 + 2_000,
  });
  const t = setup([open, cleared], "opaque-cursor");
  const r = await t.req("/v1/alarms");
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), {
    items: [
      {
        ...open,
        raisedAt: "2024-05-01T12:00:00.000Z",
        clearedAt: null,
        updatedAt: "2024-05-01T12:00:00.000Z",
      },
      {
        ...cleared,
        raisedAt: "2024-05-01T12:00:00.001Z",
        clearedAt: "2024-05-01T12:00:02.000Z",
        ackedAt: "2024-05-01T12:00:01.000Z",
        updatedAt: "2024-05-01T12:00:02.000Z",
      },
    ],
    next: "opaque-cursor",
  });
  assert.deepEqual(t.queries, [{ limit: 100 }]);
  // no next at the end
  assert.deepEqual(await (await setup([]).req("/v1/alarms")).json(), { items: [] });
});

Deno.test("GET /v1/alarms passes the filters, limit and cursor to the service", async () => {
  const t = setup();
  const q = "state=acknowledged&twin=line.3%3Apress&severity=minor&limit=1000&cursor=abc%3D";
  assert.equal((await t.req(`/v1/alarms?${q}`)).status, 200);
  assert.equal((await t.req("/v1/alarms?state=cleared&limit=1")).status, 200);
  assert.deepEqual(t.queries, [
    { state: "acknowledged", twin: "line.3:press", severity: "minor", limit: 1000, cursor: "abc=" },
    { state: "cleared", limit: 1 },
  ]);
});

Deno.test("GET /v1/alarms: bad filters -> 400 in the envelope, naming the parameter", async () => {
  const t = setup();
  const cases: Array<[string, RegExp]> = [
    ["state=open", /^state: /],
    ["severity=huge", /^severity: /],
    ["limit=0", /^limit: /],
    ["limit=1001", /^limit: /],
    ["limit=ten", /^limit: /],
    ["limit=1.5", /^limit: /],
    ["twin=bad%20id", /^twin: /],
    ["twin=", /^twin: /],
    ["cursor=", /^cursor: /],
  ];
  for (const [q, message] of cases) {
    await assertError(await t.req(`/v1/alarms?${q}`), 400, "bad_request", message);
  }
  assert.deepEqual(t.queries, []);
});

Deno.test("POST ack: empty body (with or without a JSON type), {} and a comment all work", async () => {
  const ids = ["press-7:overheat:1", "press-7:overheat:2", "press-7:overheat:3", "p:overheat:4"];
  const t = setup(ids.map((id) => {
    const [twin, rule, seq] = id.split(":");
    return alarm(twin, rule, Number(seq));
  }));
  const bodies = [post(undefined, null), post(""), post(" \n"), post("{}")];
  for (const [i, init] of bodies.entries()) {
    const r = await t.req(`/v1/alarms/${ids[i]}/ack`, init);
    assert.equal(r.status, 200, `body #${i}: ${await r.clone().text()}`);
    const a = await r.json();
    assert.equal(a.id, ids[i]);
    assert.equal(a.state, "acknowledged");
    assert.equal(a.acknowledged, true);
    assert.equal(a.ackedAt, "2024-05-01T12:01:00.000Z");
    assert.equal(a.updatedAt, "2024-05-01T12:01:00.000Z");
    assert.equal(a.clearedAt, null);
  }
  const c = await t.req(`/v1/alarms/${ids[0]}/ack`, post(JSON.stringify({ comment: "on it" })));
  assert.equal(c.status, 200);
  assert.deepEqual(t.acks, [...ids.map((id) => [id, undefined]), [ids[0], "on it"]]);
  const longest = "x".repeat(MAX_ACK_COMMENT);
  const l = await t.req(`/v1/alarms/${ids[1]}/ack`, post(JSON.stringify({ comment: longest })));
  assert.equal(l.status, 200);
});

Deno.test("POST ack: twin ids with . and : reach the service decoded; unknown -> 404", async () => {
  const a = alarm("line.3:press", "overheat", 12);
  const t = setup([a]);
  for (
    const path of [
      "line.3:press:overheat:12",
      encodeURIComponent(a.id),
      "line.3%3apress:overheat:12",
    ]
  ) {
    const r = await t.req(`/v1/alarms/${path}/ack`, post());
    assert.equal(r.status, 200, path);
    assert.equal((await r.json()).id, a.id);
  }
  assert.deepEqual(t.acks.map(([id]) => id), [a.id, a.id, a.id]);
  await assertError(
    await t.req("/v1/alarms/press-1:overheat:99/ack", post("{}")),
    404,
    "alarm_not_found",
    /"press-1:overheat:99"/,
  );
});

Deno.test("POST ack: bad ids and bodies -> 400 in the envelope; the service is not asked", async () => {
  const t = setup([alarm("p", "r", 1)]);
  for (const id of ["nope", "p:r", "p:r:x", "p:r:01", "p%20q:r:1", "p:r.s:1", "p:r:1:"]) {
    await assertError(
      await t.req(`/v1/alarms/${id}/ack`, post()),
      400,
      "bad_alarm_id",
      /^id: alarm id must look like \{twin\}:\{rule\}:\{seq\}$/,
    );
  }
  const too = "x".repeat(MAX_ACK_COMMENT + 1);
  const bad: Array<[RequestInit, RegExp]> = [
    [post(JSON.stringify({ comment: too })), /^comment: /],
    [post(JSON.stringify({ comment: 5 })), /^comment: /],
    [post("[]"), /./],
    [post("{nope"), /Malformed JSON/],
  ];
  for (const [init, message] of bad) {
    await assertError(await t.req("/v1/alarms/p:r:1/ack", init), 400, "bad_request", message);
  }
  assert.deepEqual(t.acks, []);
});

Deno.test("OpenAPI document has the alarm paths and the Alarm schema", () => {
  const app = new OpenAPIHono();
  app.route("/v1/alarms", alarmRoutes(fakeAlarms([]).svc));
  const doc = app.getOpenAPIDocument({ openapi: "3.0.3", info: { title: "t", version: "1" } });
  assert.deepEqual(Object.keys(doc.paths).sort(), ["/v1/alarms", "/v1/alarms/{id}/ack"]);
  const list = doc.paths["/v1/alarms"].get!;
  assert.deepEqual(
    (list.parameters ?? []).map((p) => "name" in p ? p.name : "").sort(),
    ["cursor", "limit", "severity", "site", "state", "twin"],
  );
  const ack = doc.paths["/v1/alarms/{id}/ack"].post!;
  assert.deepEqual(Object.keys(ack.responses).sort(), ["200", "400", "404"]);
  assert.ok(ack.requestBody && "required" in ack.requestBody && !ack.requestBody.required);
  const schemas = doc.components?.schemas ?? {};
  for (const s of ["Alarm", "AlarmPage", "AlarmAck", "Error"]) assert.ok(schemas[s], s);
});
