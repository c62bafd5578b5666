/**
 * Adversarial: a user's mistake is a 4xx that names it, never a 5xx. A 3,000-character list
 * cursor used to reach Deno KV as a key (500, "Key too large"); `history?field=time` reached
 * InfluxDB (502, or 503 without it); a malformed %-escape in the path threw in the auth layer
 * (500). Cursors and history parameters are checked first, InfluxDB's refusals of a query are
 * 400 `bad_history_query`, and the one error mapper turns input-caused storage errors into
 * 4xx. A sweep sends hostile values to every route of the OpenAPI document.
 */
import assert from "node:assert/strict";
import { getJson, publishQos1, startInfluxd, startNode, waitFor } from "../harness/mod.ts";

const KEY = "adversarial-admin-key-0002";
const auth = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };
const get = (url: string) => getJson(url, { headers: auth });

Deno.test("api errors: bad list cursors are 400 bad_cursor; real cursors still page", async () => {
  await using node = await startNode({ TWINMILL_API_KEYS: `${KEY}:admin` });
  for (const id of ["a-1", "a-2", "a-3"]) {
    const r = await getJson(`${node.httpUrl}/v1/twins/${id}`, {
      method: "PUT",
      headers: auth,
      body: '{"attributes":{"site":"A"}}',
    });
    assert.equal(r.status, 201);
  }
  for (
    const cursor of [
      "x".repeat(3000),
      btoa("y".repeat(3000)),
      "!!not-base64!!",
      btoa("not a twin id/\u0000"),
      "%E0%A4%A",
    ]
  ) {
    const r = await get(`${node.httpUrl}/v1/twins?cursor=${encodeURIComponent(cursor)}`);
    assert.equal(r.status, 400, `cursor ${cursor.slice(0, 20)}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.code, "bad_cursor");
    assert.match(r.body.error.message, /cursor/);
    const alarms = await get(`${node.httpUrl}/v1/alarms?cursor=${encodeURIComponent(cursor)}`);
    assert.equal(alarms.status, 400, JSON.stringify(alarms.body));
    assert.ok(["bad_cursor", "bad_request"].includes(alarms.body.error.code));
  }
  const alarmCursor = btoa(JSON.stringify({ t: "z".repeat(3000), i: 0 }));
  const a = await get(`${node.httpUrl}/v1/alarms?cursor=${alarmCursor.slice(0, 1024)}`);
  assert.equal(a.status, 400, JSON.stringify(a.body));

  const first = await get(`${node.httpUrl}/v1/twins?limit=2`);
  assert.deepEqual(first.body.items.map((t: { id: string }) => t.id), ["a-1", "a-2"]);
  const next = await get(`${node.httpUrl}/v1/twins?limit=2&cursor=${first.body.cursor}`);
  assert.deepEqual(next.body.items.map((t: { id: string }) => t.id), ["a-3"]);
});

Deno.test("api errors: history parameters InfluxDB cannot take are 400 naming the parameter", async () => {
  await using influx = await startInfluxd();
  await using node = await startNode({
    TWINMILL_API_KEYS: `${KEY}:admin`,
    INFLUX_URL: influx.url,
    INFLUX_API: "v1",
    INFLUX_DB: "adv",
  });
  assert.equal((await publishQos1(node, "twins/h-1/telemetry", '{"temp":21}')).code, 0);
  const history = (q: string) => get(`${node.httpUrl}/v1/twins/h-1/history?${q}`);
  await waitFor(async () => (await history("field=temp")).body.points?.length === 1, {
    message: "the point is in InfluxDB",
  });
  const cases: Array<[string, string, RegExp]> = [
    ["field=time", "bad_field", /time/],
    ["field=TIME", "bad_field", /time/],
    ["field=a%0Ab", "bad_field", /control/],
    ["field=temp&from=0001-01-01T00:00:00Z", "bad_request", /from/],
    ["field=temp&to=9999-01-01T00:00:00Z", "bad_request", /to/],
    ["field=temp&every=0s", "bad_request", /every/],
    ["field=temp&every=999999w", "bad_request", /every/],
  ];
  for (const [q, code, message] of cases) {
    const r = await history(q);
    assert.equal(r.status, 400, `${q}: ${r.status} ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.code, code, q);
    assert.match(r.body.error.message, message, q);
  }
  // quoting: odd field names are asked for, not injected (no such field: no points)
  for (const field of ['te"mp', "te'mp", "te\\mp", 'x" FROM "telemetry', "ü-µ"]) {
    const r = await history(`field=${encodeURIComponent(field)}`);
    assert.equal(r.status, 200, `${JSON.stringify(field)}: ${JSON.stringify(r.body)}`);
    assert.deepEqual(r.body.points, []);
  }
  // a query InfluxDB refuses by its own limits is the request's fault too
  const huge = await history("field=temp&every=1ms&from=1970-01-01T00:00:00Z");
  assert.ok(huge.status < 500, `${huge.status} ${JSON.stringify(huge.body)}`);
});

Deno.test("api errors: without InfluxDB, history?field=time is still 400, not 503", async () => {
  await using node = await startNode({ TWINMILL_API_KEYS: `${KEY}:admin` });
  const r = await get(`${node.httpUrl}/v1/twins/x/history?field=time`);
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.equal(r.body.error.code, "bad_field");
});

Deno.test("api errors: a bad provisioning key id is bad_provisioning_key_id, not bad_twin_id", async () => {
  await using node = await startNode({ TWINMILL_API_KEYS: `${KEY}:admin` });
  for (const method of ["GET", "DELETE"]) {
    const r = await getJson(`${node.httpUrl}/v1/provisioning-keys/not-a-key`, {
      method,
      headers: auth,
    });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.equal(r.body.error.code, "bad_provisioning_key_id");
    assert.match(r.body.error.message, /pk_/);
  }
  const missing = await get(`${node.httpUrl}/v1/provisioning-keys/pk_0123456789ab`);
  assert.equal(missing.status, 404);
});

Deno.test("api errors: hostile values on every route of the OpenAPI document answer below 500", async () => {
  await using node = await startNode({ TWINMILL_API_KEYS: `${KEY}:admin` });
  const doc = await (await fetch(`${node.httpUrl}/openapi.json`)).json();
  const values = ["x".repeat(3000), "%E0%A4%A", "%00", "..", "__proto__", "%2F", "💥", "1e400"];
  const bodies = ["", "null", "[]", "{", '{"__proto__":{"x":1}}', '{"attributes":{"a":1}}'];
  const fivexx: string[] = [];
  for (const [path, ops] of Object.entries<Record<string, unknown>>(doc.paths)) {
    for (const method of Object.keys(ops).map((m) => m.toUpperCase())) {
      for (const v of values) {
        const url = `${node.httpUrl}${path.replace(/\{[^}]+\}/g, v)}?cursor=${v}&limit=${v}` +
          `&since=${v}&field=${v}&from=${v}&twin=${v}&state=${v}&${v}=1`;
        for (const body of method === "GET" || method === "DELETE" ? [undefined] : bodies) {
          const r = await fetch(url, { method, headers: auth, body });
          const text = await r.text();
          // 503 history_unavailable: this node has no InfluxDB (a setting, not the input)
          if (r.status >= 500 && !text.includes("history_unavailable")) {
            fivexx.push(`${r.status} ${method} ${path} (${v.slice(0, 12)}): ${text.slice(0, 120)}`);
          }
        }
      }
    }
  }
  assert.deepEqual(fivexx, []);
});
