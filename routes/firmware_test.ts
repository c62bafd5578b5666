import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createApp } from "./app.ts";
import { firmwareRoutes } from "./firmware.ts";
import { memoryDocStores } from "../src/persistence/doc_store.ts";
import { silentLogger } from "../src/obs/log.ts";
import { FirmwareImages } from "../src/mgmt/firmware.ts";
import type { StoredFirmware } from "../src/mgmt/firmware_types.ts";
import { memoryBlobStore } from "../src/mgmt/firmware_blobs.ts";
import { memoryHost } from "../src/runtime/testing.ts";

async function setup(maxDownloads = 256) {
  const { host, transport, metrics } = memoryHost();
  const stores = memoryDocStores();
  const firmware = new FirmwareImages({
    docs: await stores.open<StoredFirmware>("firmware"),
    blobs: memoryBlobStore(),
    keys: [],
    maxBytes: 4 * 1024 * 1024,
    requireSigned: false,
    storeMaxBytes: 64 * 1024 * 1024,
    logger: silentLogger,
  });
  const denied: string[] = [];
  const routes = firmwareRoutes({
    firmware,
    deviceAuth: {
      verify: (twin, token) =>
        Promise.resolve(twin === "press-1" && token === "good-token" ? "cred_1" : null),
    },
    registry: metrics.registry,
    denied: (_c, who) => void denied.push(who),
    maxDownloads,
  });
  const app = createApp({
    host,
    transport,
    metrics,
    logger: silentLogger,
    ready: () => true,
    extra: { "/v1/firmware": routes },
  });
  return {
    app,
    denied,
    req: (path: string, init?: RequestInit) => app.request(path, init),
    [Symbol.asyncDispose]: () => host.close(),
  };
}

const image = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7) % 251);

Deno.test("firmware routes: a 2 MiB upload passes the 1 MiB body limit; HEAD, 304, ranges", async () => {
  await using t = await setup();
  const img = image(2 * 1024 * 1024 + 3);
  const up = await t.req("/v1/firmware?name=plc&version=3.1", {
    method: "POST",
    headers: { "content-type": "application/vnd.acme.fw" },
    body: img,
  });
  assert.equal(up.status, 201);
  const meta = await up.json();
  assert.equal(meta.sha256, createHash("sha256").update(img).digest("hex"));
  assert.equal(meta.contentType, "application/vnd.acme.fw");
  assert.match(meta.createdAt, /^\d{4}-\d\d-\d\dT/);

  const head = await t.req("/v1/firmware/plc-3.1/download", { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("content-length"), String(img.length));
  assert.equal(head.headers.get("content-type"), "application/vnd.acme.fw");
  const etag = head.headers.get("etag")!;
  assert.equal(etag, `"${meta.sha256}"`);

  const same = await t.req("/v1/firmware/plc-3.1/download", { headers: { "if-none-match": etag } });
  assert.equal(same.status, 304);

  const r = await t.req("/v1/firmware/plc-3.1/download", {
    headers: { range: "bytes=100-199", "if-range": etag },
  });
  assert.equal(r.status, 206);
  assert.equal(r.headers.get("content-range"), `bytes 100-199/${img.length}`);
  assert.deepEqual(new Uint8Array(await r.arrayBuffer()), img.subarray(100, 200));

  const list = await (await t.req("/v1/firmware")).json();
  assert.deepEqual(list.items.map((f: { id: string }) => f.id), ["plc-3.1"]);
  assert.equal((await (await t.req("/v1/firmware/plc-3.1")).json()).size, img.length);
});

Deno.test("firmware routes: error codes", async () => {
  await using t = await setup();
  const bad = await t.req("/v1/firmware/..%2Fx");
  assert.equal((await bad.json()).error.code, "bad_firmware_id");
  const missing = await t.req("/v1/firmware/nope-1");
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).error.code, "firmware_not_found");
  const noName = await t.req("/v1/firmware?version=1", { method: "POST", body: image(3) });
  assert.equal(noName.status, 400);
  const empty = await t.req("/v1/firmware?name=a&version=1", { method: "POST" });
  assert.equal(empty.status, 400);
  assert.equal((await empty.json()).error.code, "firmware_empty");
  const tooBig = await t.req("/v1/firmware?name=a&version=1", {
    method: "POST",
    body: image(4 * 1024 * 1024 + 1),
  });
  assert.equal(tooBig.status, 413);
  assert.equal((await tooBig.json()).error.code, "firmware_too_large");
  const del = await t.req("/v1/firmware/a-1", { method: "DELETE" });
  assert.equal(del.status, 404);
});

Deno.test("firmware routes: devices with Basic auth; a wrong token is 401 and reported", async () => {
  await using t = await setup();
  await t.req("/v1/firmware?name=a&version=1", { method: "POST", body: image(10) });
  const as = (user: string, pass: string) => ({
    headers: { authorization: `Basic ${btoa(`${user}:${pass}`)}` },
  });
  const ok = await t.req("/v1/firmware/a-1/download", as("press-1", "good-token"));
  assert.equal(ok.status, 200);
  assert.deepEqual(new Uint8Array(await ok.arrayBuffer()), image(10));
  const wrong = await t.req("/v1/firmware/a-1/download", as("press-1", "bad"));
  assert.equal(wrong.status, 401);
  assert.equal(wrong.headers.get("www-authenticate"), 'Basic realm="twinmill firmware"');
  // the id is not revealed to a wrong login
  const hidden = await t.req("/v1/firmware/nope-1/download", as("press-1", "bad"));
  assert.equal(hidden.status, 401);
  const junk = await t.req("/v1/firmware/a-1/download", { headers: { authorization: "Basic %%" } });
  assert.equal(junk.status, 401);
  assert.deepEqual(t.denied, ["device:press-1", "device:press-1", "unknown"]);
});

Deno.test("firmware routes: downloads at once are bounded; a cancelled one frees its slot", async () => {
  await using t = await setup(1);
  await t.req("/v1/firmware?name=a&version=1", { method: "POST", body: image(100_000) });
  const first = await t.req("/v1/firmware/a-1/download");
  assert.equal(first.status, 200);
  const busy = await t.req("/v1/firmware/a-1/download");
  assert.equal(busy.status, 503);
  assert.equal(busy.headers.get("retry-after"), "5");
  assert.equal((await busy.json()).error.code, "firmware_download_busy");
  await first.body!.cancel(); // the client went away
  const again = await t.req("/v1/firmware/a-1/download");
  assert.equal(again.status, 200);
  assert.equal((await again.arrayBuffer()).byteLength, 100_000);
  const third = await t.req("/v1/firmware/a-1/download");
  assert.equal(third.status, 200, "a download read to the end frees its slot too");
  await third.body!.cancel();
});

Deno.test("firmware routes: every route is in the OpenAPI document", async () => {
  await using t = await setup();
  const doc = await (await t.req("/openapi.json")).json();
  assert.deepEqual(Object.keys(doc.paths["/v1/firmware"]).sort(), ["get", "post"]);
  assert.deepEqual(Object.keys(doc.paths["/v1/firmware/{id}"]).sort(), ["delete", "get"]);
  const dl = doc.paths["/v1/firmware/{id}/download"].get;
  assert.deepEqual(Object.keys(dl.responses).sort(), [
    "200",
    "206",
    "304",
    "400",
    "401",
    "404",
    "416",
    "503",
  ]);
  assert.ok(doc.paths["/v1/firmware"].post.requestBody.content["application/octet-stream"]);
});
