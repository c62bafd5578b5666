import assert from "node:assert/strict";
import { createApp } from "./app.ts";
import { silentLogger } from "../src/obs/log.ts";
import { memoryHost } from "../src/runtime/testing.ts";

/** The gateway as a node builds it (anonymous). */
function setup() {
  const { host, transport, metrics } = memoryHost();
  const app = createApp({ host, transport, metrics, logger: silentLogger, ready: () => true });
  return {
    req: (path: string, headers: Record<string, string> = {}) =>
      app.request(path, { headers: { "accept-encoding": "identity", ...headers } }),
    [Symbol.asyncDispose]: () => host.close(),
  };
}

/** Every `src` and `href` of an HTML page. */
const references = (html: string) =>
  [...html.matchAll(/\b(?:src|href)="([^"]+)"/g)].map((m) => m[1]);

Deno.test("docs: the page and every file it references come from the node, no other host", async () => {
  await using t = setup();
  const r = await t.req("/docs");
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("content-type"), "text/html; charset=utf-8");
  assert.equal(r.headers.get("cache-control"), "no-cache");
  assert.match(r.headers.get("content-security-policy")!, /default-src 'self'/);
  const page = await r.text();
  assert.doesNotMatch(page, /https?:\/\//, "no absolute URL: nothing leaves the node");
  const refs = references(page);
  assert.deepEqual(
    refs.filter((u) => !u.startsWith("/docs/assets/")),
    [],
    "all under /docs/assets/",
  );
  for (
    const want of ["swagger-ui-bundle.js", "swagger-ui.css", "start.js", "favicon-32x32.png"]
  ) assert.ok(refs.includes(`/docs/assets/${want}`), want);
  for (const ref of refs) {
    const a = await t.req(ref);
    assert.equal(a.status, 200, ref);
    assert.ok((await a.arrayBuffer()).byteLength > 0, ref);
  }
  const start = await (await t.req("/docs/assets/start.js")).text();
  assert.match(start, /url: "\/openapi\.json"/);
  assert.match(start, /validatorUrl: null/, "the online validator badge is off");
  assert.doesNotMatch(start, /https?:\/\//);
  const bundle = await t.req("/docs/assets/swagger-ui-bundle.js");
  assert.equal(bundle.headers.get("content-type"), "text/javascript; charset=utf-8");
  assert.equal(bundle.headers.get("cache-control"), "public, max-age=3600");
  assert.match(await bundle.text(), /SwaggerUIBundle/);
});

Deno.test("docs: Swagger UI's bundle gzipped once, revalidated by ETag", async () => {
  await using t = setup();
  const plain = await t.req("/docs/assets/swagger-ui-bundle.js");
  const size = (await plain.arrayBuffer()).byteLength;
  const zipped = await t.req("/docs/assets/swagger-ui-bundle.js", { "accept-encoding": "gzip" });
  assert.equal(zipped.headers.get("content-encoding"), "gzip");
  const packed = (await zipped.arrayBuffer()).byteLength;
  assert.ok(packed < size / 2, `${packed} of ${size} bytes`);
  const again = await t.req("/docs/assets/swagger-ui-bundle.js", {
    "accept-encoding": "gzip",
    "if-none-match": zipped.headers.get("etag")!,
  });
  assert.equal(again.status, 304);
  await again.body?.cancel();
});

Deno.test("docs: files of the package not listed, and traversal -> 404 envelope", async () => {
  await using t = setup();
  for (
    const path of [
      "/docs/assets/package.json",
      "/docs/assets/index.html",
      "/docs/assets/..%2fpackage.json",
      "/docs/assets/..%2f..%2f..%2f..%2fdeno.json",
      "/docs/assets/",
    ]
  ) {
    const r = await t.req(path);
    assert.equal(r.status, 404, path);
    assert.equal((await r.json()).error.code, "not_found", path);
  }
});
