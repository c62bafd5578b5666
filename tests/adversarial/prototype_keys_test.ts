/**
 * Adversarial: `__proto__`, `constructor` and `prototype` as attribute names. An attribute
 * `__proto__` used to be dropped silently (the twin was created without it) and
 * `GET /v1/twins?__proto__=x` returned every twin, unfiltered. Every place an attribute name
 * comes in — attributes, list filters, config and campaign selectors, provisioning templates,
 * bulk rows — now refuses them with a 400 that names the key, and stores nothing.
 */
import assert from "node:assert/strict";
import { getJson, startNode } from "../harness/mod.ts";

const KEY = "adversarial-admin-key-0005";
const RESERVED = ["__proto__", "constructor", "prototype"];

const send = (method: string, body?: string, type = "application/json"): RequestInit => ({
  method,
  headers: { authorization: `Bearer ${KEY}`, "content-type": type },
  body,
});

Deno.test("prototype keys: as attribute names they are refused, the twin is not created", async () => {
  await using node = await startNode({ TWINMILL_API_KEYS: `${KEY}:admin` });
  for (const k of RESERVED) {
    const r = await getJson(
      `${node.httpUrl}/v1/twins/p-1`,
      send("PUT", `{"attributes":{"site":"A","${k}":"x"}}`),
    );
    assert.equal(r.status, 400, `${k}: ${JSON.stringify(r.body)}`);
    assert.ok(["bad_attributes", "bad_key"].includes(r.body.error.code), r.body.error.code);
    assert.ok(r.body.error.message.includes(k), r.body.error.message);
  }
  const twin = await getJson(`${node.httpUrl}/v1/twins/p-1`, send("GET"));
  assert.equal(twin.status, 404);
});

Deno.test("prototype keys: as list filters they are refused, never ignored", async () => {
  await using node = await startNode({ TWINMILL_API_KEYS: `${KEY}:admin` });
  for (const id of ["f-1", "f-2"]) {
    const r = await getJson(`${node.httpUrl}/v1/twins/${id}`, send("PUT", '{"attributes":{}}'));
    assert.equal(r.status, 201);
  }
  for (const k of RESERVED) {
    const r = await getJson(`${node.httpUrl}/v1/twins?${k}=x`, send("GET"));
    assert.equal(r.status, 400, `?${k}=x: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.code, "bad_filter");
    assert.ok(r.body.error.message.includes(k));
  }
});

Deno.test("prototype keys: selectors, provisioning templates and bulk rows refuse them too", async () => {
  await using node = await startNode({ TWINMILL_API_KEYS: `${KEY}:admin` });
  const up = await getJson(`${node.httpUrl}/v1/firmware?name=fw&version=1.0.0`, {
    ...send("POST", "", "application/octet-stream"),
    body: new Uint8Array(16),
  });
  assert.equal(up.status, 201, JSON.stringify(up.body));
  for (const k of ["constructor", "prototype"]) {
    const cfg = await getJson(
      `${node.httpUrl}/v1/configs/c-1`,
      send("PUT", JSON.stringify({ selector: { [k]: "x" }, desired: { a: 1 } })),
    );
    assert.equal(cfg.status, 400, JSON.stringify(cfg.body));
    assert.equal(cfg.body.error.code, "config_invalid");
    assert.ok(cfg.body.error.message.includes(k));

    const camp = await getJson(
      `${node.httpUrl}/v1/campaigns`,
      send("POST", JSON.stringify({ name: "c", firmware: up.body.id, selector: { [k]: "x" } })),
    );
    assert.equal(camp.status, 400, JSON.stringify(camp.body));
    assert.equal(camp.body.error.code, "campaign_invalid");
    assert.ok(camp.body.error.message.includes(k));

    const pk = await getJson(
      `${node.httpUrl}/v1/provisioning-keys`,
      send("POST", JSON.stringify({ name: "k", template: { attributes: { [k]: "x" } } })),
    );
    assert.equal(pk.status, 400, JSON.stringify(pk.body));
    assert.ok(pk.body.error.message.includes(k));
  }
  // bulk (NDJSON: streamed past the JSON intake): the row is refused, the twin not created
  const bulk = await fetch(
    `${node.httpUrl}/v1/twins:bulk`,
    send("POST", '{"id":"bk-1","attributes":{"constructor":"x"}}\n', "application/x-ndjson"),
  );
  const lines = (await bulk.text()).trim().split("\n").map((l) => JSON.parse(l));
  const row = lines.find((l) => l.row === 1);
  assert.equal(row?.status, "failed", JSON.stringify(lines));
  assert.ok(JSON.stringify(row).includes("constructor"), JSON.stringify(row));
  assert.equal((await getJson(`${node.httpUrl}/v1/twins/bk-1`, send("GET"))).status, 404);
});
