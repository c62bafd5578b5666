/**
 * Every route a node serves is in its OpenAPI document, every documented route is served, and
 * the document is valid OpenAPI 3 (checked against the specification's schema). The app is the
 * one a real node serves: `startNode` from `src/node.ts`, in this process, in single-node mode
 * and in cluster mode (which adds `/v1/cluster`) against a real nats-server.
 */
import assert from "node:assert/strict";
import SwaggerParser from "@apidevtools/swagger-parser";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { loadConfig } from "../../src/config/config.ts";
import { startNode as startInProcess } from "../../src/node.ts";
import { silentLogger } from "../../src/obs/log.ts";
import { startNats } from "../harness/mod.ts";

/**
 * Served but not API routes, so not in the document. Add here only what is not part of the
 * API, with the reason.
 */
const NOT_API = new Set([
  "GET /openapi.json", // the document itself
  "GET /docs", // its interactive viewer (Swagger UI's HTML page)
  "GET /docs/assets/{name}", // the viewer's script, stylesheet and icon (routes/docs.ts)
  "GET /", // the operator console's page (routes/console.ts; its files, /console/*, a wildcard)
]);

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/** A Hono path in OpenAPI form: `/v1/twins/:id` → `/v1/twins/{id}` (a `:id{regex}` too). */
const openApiPath = (path: string) =>
  path.replace(/\/:([A-Za-z0-9_]+)(\{[^}]*\})?/g, "/{$1}").replace(/(.)\/$/, "$1");

/** `METHOD /path` of every handler the app serves; middleware (`app.use`) left out. */
function served(app: OpenAPIHono): Set<string> {
  const out = new Set<string>();
  for (const r of app.routes) {
    if (r.path.endsWith("/*")) continue; // middleware (app.use, or app.on for some methods)
    out.add(`${r.method} ${openApiPath(r.path)}`);
  }
  return out;
}

/** `METHOD /path` of every operation in the document. */
function documented(doc: { paths: Record<string, Record<string, unknown>> }): Set<string> {
  const out = new Set<string>();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const m of Object.keys(item)) {
      if (METHODS.includes(m)) out.add(`${m.toUpperCase()} ${path}`);
    }
  }
  return out;
}

async function checkNode(env: Record<string, string>, mustServe: string[]) {
  const dataDir = await Deno.makeTempDir({ prefix: "twinmill-openapi-" });
  const node = await startInProcess(
    loadConfig({
      TWINMILL_HTTP_PORT: "0",
      TWINMILL_MQTT_PORT: "0",
      TWINMILL_DATA_DIR: dataDir,
      TWINMILL_LOG: "error",
      ...env,
    }),
    silentLogger,
  );
  try {
    const res = await node.app.request("/openapi.json");
    assert.equal(res.status, 200);
    const doc = await res.json();
    const routes = served(node.app);
    const ops = documented(doc);
    for (const r of mustServe) assert.ok(routes.has(r), `the node serves ${r}`);
    const undocumented = [...routes].filter((r) => !ops.has(r) && !NOT_API.has(r)).sort();
    assert.deepEqual(undocumented, [], "served but not in /openapi.json");
    const unserved = [...ops].filter((r) => !routes.has(r)).sort();
    assert.deepEqual(unserved, [], "in /openapi.json but not served");
    for (const r of NOT_API) assert.ok(!ops.has(r), `${r} is documented: take it off NOT_API`);

    assert.match(doc.openapi, /^3\.0\./);
    // the specification's JSON schema, plus unique operation ids and declared path parameters
    await SwaggerParser.validate(structuredClone(doc));
    return ops;
  } finally {
    await node[Symbol.asyncDispose]();
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
}

Deno.test("openapi: single node — every served route documented, document valid OpenAPI 3", async () => {
  const ops = await checkNode({}, [
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "GET /v1/revocations",
    "POST /v1/revocations",
    "GET /v1/stream",
    "POST /v1/stream/tickets",
    "GET /v1/twins/{id}/diagnostics",
    "POST /v1/twins:bulk",
    "GET /v1/connectors",
  ]);
  assert.ok(!ops.has("GET /v1/cluster"), "no cluster view on a single node");
});

Deno.test("openapi: cluster node — /v1/cluster served and documented too", async () => {
  await using nats = await startNats({ jetstream: true });
  const ops = await checkNode(
    { NATS_URL: nats.url, TWINMILL_NODE_ID: "openapi-1", TWINMILL_SHARDS: "4" },
    ["GET /v1/cluster", "GET /v1/connectors"],
  );
  assert.ok(ops.has("GET /v1/cluster"));
});
