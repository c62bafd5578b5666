import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { Hono } from "hono";
import { consoleRoutes } from "./console.ts";
import { createApp } from "./app.ts";
import { errorHandler } from "./errors.ts";
import { Tickets } from "./auth.ts";
import { silentLogger } from "../src/obs/log.ts";
import { memoryHost } from "../src/runtime/testing.ts";

const INDEX = `<!doctype html><html lang="en"><title>t</title>${"<p>x</p>".repeat(100)}</html>`;
const APP_JS = `export const a = ${JSON.stringify("a".repeat(2000))};\n`;

/** A console directory in a temp dir, a secret beside it, and the routes serving it. */
async function setup() {
  const root = await Deno.makeTempDir({ prefix: "twinmill-console-" });
  const dir = `${root}/console`;
  await Deno.mkdir(`${dir}/vendor/lib`, { recursive: true });
  await Deno.writeTextFile(`${dir}/index.html`, INDEX);
  await Deno.writeTextFile(`${dir}/app.js`, APP_JS);
  await Deno.writeTextFile(`${dir}/vendor/lib/LICENSE`, "MIT");
  await Deno.writeFile(`${dir}/logo.png`, new Uint8Array(600).fill(7));
  await Deno.writeTextFile(`${dir}/.hidden.js`, "no");
  await Deno.writeTextFile(`${root}/secret.json`, '{"key":"s3cret"}');
  await Deno.symlink(`${root}/secret.json`, `${dir}/link.json`);
  const app = new Hono();
  app.onError(errorHandler(silentLogger));
  // as the gateway does (a path normalized out of /console/ reaches no route)
  app.notFound((c) => c.json({ error: { code: "not_found", message: "no route" } }, 404));
  app.route("/", consoleRoutes({ dir }));
  return {
    dir,
    app,
    req: (path: string, headers: Record<string, string> = {}) =>
      app.request(path, { headers: { "accept-encoding": "identity", ...headers } }),
    [Symbol.asyncDispose]: () => Deno.remove(root, { recursive: true }),
  };
}

Deno.test("console: GET / is index.html, revalidated every time, not frameable", async () => {
  await using t = await setup();
  const r = await t.req("/");
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "text/html; charset=utf-8");
  assert.equal(r.headers.get("cache-control"), "no-cache");
  assert.match(r.headers.get("content-security-policy")!, /frame-ancestors 'none'/);
  assert.match(r.headers.get("etag")!, /^"[\w-]{24}"$/);
  assert.equal(await r.text(), INDEX);
  const head = await t.app.request("/", { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("content-length"), String(INDEX.length));
  assert.equal(await head.text(), "");
  const same = await t.req("/console/index.html");
  assert.equal(same.headers.get("etag"), r.headers.get("etag"));
  assert.equal(await same.text(), INDEX);
});

Deno.test("console: content types and cache lifetime of the other files", async () => {
  await using t = await setup();
  const cases: [string, string][] = [
    ["/console/app.js", "text/javascript; charset=utf-8"],
    ["/console/logo.png", "image/png"],
    ["/console/vendor/lib/LICENSE", "text/plain; charset=utf-8"],
  ];
  for (const [path, type] of cases) {
    const r = await t.req(path);
    assert.equal(r.status, 200, path);
    assert.equal(r.headers.get("content-type"), type, path);
    assert.equal(r.headers.get("cache-control"), "public, max-age=300", path);
    assert.equal(r.headers.get("x-content-type-options"), "nosniff", path);
    await r.body?.cancel();
  }
  assert.equal(await (await t.req("/console/app.js")).text(), APP_JS);
});

Deno.test("console: If-None-Match with the ETag -> 304 without body; another -> 200", async () => {
  await using t = await setup();
  const etag = (await t.req("/console/app.js")).headers.get("etag")!;
  const r = await t.req("/console/app.js", { "if-none-match": etag });
  assert.equal(r.status, 304);
  assert.equal(r.headers.get("etag"), etag);
  assert.equal(await r.text(), "");
  const weak = await t.req("/console/app.js", { "if-none-match": `"x", W/${etag}` });
  assert.equal(weak.status, 304, "If-None-Match compares weakly");
  await weak.body?.cancel();
  const other = await t.req("/console/app.js", { "if-none-match": '"other"' });
  assert.equal(other.status, 200);
  assert.equal(await other.text(), APP_JS);
});

Deno.test("console: gzip when accepted (its own ETag), never for PNG", async () => {
  await using t = await setup();
  const r = await t.req("/console/app.js", { "accept-encoding": "gzip, deflate, br" });
  assert.equal(r.headers.get("content-encoding"), "gzip");
  assert.equal(r.headers.get("vary"), "Accept-Encoding");
  const packed = new Uint8Array(await r.arrayBuffer());
  assert.ok(packed.length < APP_JS.length / 10, `${packed.length} bytes`);
  assert.equal(new TextDecoder().decode(gunzipSync(packed)), APP_JS);
  const plainTag = (await t.req("/console/app.js")).headers.get("etag")!;
  assert.equal(r.headers.get("etag"), `${plainTag.slice(0, -1)}-gz"`);
  const refused = await t.req("/console/app.js", { "accept-encoding": "gzip;q=0" });
  assert.equal(refused.headers.get("content-encoding"), null);
  assert.equal(await refused.text(), APP_JS);
  const png = await t.req("/console/logo.png", { "accept-encoding": "gzip" });
  assert.equal(png.headers.get("content-encoding"), null);
  assert.equal((await png.arrayBuffer()).byteLength, 600);
});

Deno.test("console: unknown files, dot files, links and traversal -> 404 JSON envelope", async () => {
  await using t = await setup();
  for (
    const path of [
      "/console/nope.js",
      "/console/",
      "/console/vendor",
      "/console/.hidden.js",
      "/console/link.json",
      "/console/..%2fsecret.json",
      "/console/vendor%2f..%2f..%2fsecret.json",
      "/console/%2e%2e/secret.json",
      "/console/../secret.json",
      "/console/vendor/..%5c..%5csecret.json",
      "/console/app.js%00",
      "/console/%zz",
    ]
  ) {
    const r = await t.req(path);
    assert.equal(r.status, 404, path);
    const body = await r.text();
    assert.doesNotMatch(body, /s3cret/, path);
    assert.equal(JSON.parse(body).error.code, "not_found", path);
  }
});

Deno.test("console: a file added after the first request is not served (read once)", async () => {
  await using t = await setup();
  assert.equal((await t.req("/console/app.js")).status, 200);
  await Deno.writeTextFile(`${t.dir}/late.js`, "x");
  assert.equal((await t.req("/console/late.js")).status, 404);
});

Deno.test("console: no console directory -> GET / is a 404 envelope", async () => {
  const app = new Hono();
  app.onError(errorHandler(silentLogger));
  app.route("/", consoleRoutes({ dir: "/nonexistent/twinmill-console" }));
  const r = await app.request("/");
  assert.equal(r.status, 404);
  assert.equal((await r.json()).error.code, "not_found");
});

Deno.test("console: mounted by the gateway, served without authentication", async () => {
  const { host, transport, metrics } = memoryHost();
  try {
    const app = createApp({
      host,
      transport,
      metrics,
      logger: silentLogger,
      ready: () => true,
      auth: { apiKeys: new Map([["k", { role: "admin" }]]), tickets: new Tickets(), twins: host },
    });
    assert.equal((await app.request("/v1/twins")).status, 401, "the API asks for a key");
    const r = await app.request("/console/nope.js");
    assert.equal(r.status, 404);
    assert.match((await r.json()).error.message, /No console file/);
  } finally {
    await host.close();
  }
});
