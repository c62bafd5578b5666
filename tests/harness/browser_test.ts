/**
 * The browser harness on pages of a tiny local server: it records console errors, uncaught
 * exceptions, missing assets and non-loopback requests, counts bytes on the wire, allows what
 * a test expects, and saves screenshots.
 */
import assert from "node:assert/strict";
import { launchBrowser } from "./browser.ts";

const PAGES: Record<string, [string, string]> = {
  "/clean": [
    "text/html",
    `<!doctype html><title>ok</title><h1>Clean</h1><script src="/a.js"></script>`,
  ],
  "/a.js": ["text/javascript", `document.title = "ran"; ${"// padding\n".repeat(2000)}`],
  "/broken": [
    "text/html",
    `<!doctype html><title>broken</title><script src="/missing.js"></script>
     <script>console.error("boom"); fetch("/api/missing");</script>
     <script>undefinedFunction();</script>`,
  ],
  "/away": ["text/html", `<!doctype html><img src="http://192.0.2.1:9/x.png" alt="x">`],
};

/** Serves {@linkcode PAGES} on a free port of 127.0.0.1; everything else is a 404. */
function serve() {
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    const hit = PAGES[new URL(req.url).pathname];
    return hit
      ? new Response(hit[1], { headers: { "content-type": hit[0] } })
      : new Response("no", { status: 404 });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

Deno.test("browser: a clean page passes; bytes on the wire counted; screenshot saved", async () => {
  await using server = serve();
  await using browser = await launchBrowser();
  const p = await browser.page();
  await p.page.goto(`${server.url}/clean`);
  await p.page.getByRole("heading", { name: "Clean" }).waitFor();
  await p.settled();
  assert.equal(await p.page.title(), "ran");
  p.assertNoPageErrors();
  p.assertLoopbackOnly();
  const urls = p.requests.map((r) => new URL(r.url).pathname);
  assert.deepEqual(urls.filter((u) => u !== "/favicon.ico"), ["/clean", "/a.js"]);
  const js = p.requests.find((r) => r.url.endsWith("/a.js"))!;
  assert.ok(js.transferred > 22_000 && js.transferred < 24_000, `${js.transferred} bytes`);
  assert.ok(p.transferred() >= js.transferred);
  const png = await p.screenshot("harness-clean");
  assert.ok((await Deno.stat(png)).size > 1000);
  await Deno.remove(png);
});

Deno.test("browser: console errors, exceptions and missing assets fail the page", async () => {
  await using server = serve();
  await using browser = await launchBrowser();
  const p = await browser.page();
  await p.page.goto(`${server.url}/broken`);
  await p.settled();
  const text = p.errors.join("\n");
  assert.match(text, /console error: boom/);
  assert.match(text, /page error: .*undefinedFunction/);
  // a script answered 404 is reported by Chromium as aborted
  assert.match(text, /(failed request|error status): GET .*\/missing\.js/);
  assert.doesNotMatch(text, /api\/missing/, "an API call's error status is the page's to show");
  assert.doesNotMatch(text, /Failed to load resource/, "Chromium's own line is not doubled");
  assert.throws(() => p.assertNoPageErrors(), /3 problem\(s\) in the page/);

  const q = await browser.page();
  q.allow(/boom|undefinedFunction|missing\.js/);
  await q.page.goto(`${server.url}/broken`);
  await q.settled();
  q.assertNoPageErrors();
});

Deno.test("browser: a request to another host is named", async () => {
  await using server = serve();
  await using browser = await launchBrowser();
  const p = await browser.page();
  const asked = p.page.waitForEvent("request", (r) => r.url().includes("192.0.2.1"));
  await p.page.goto(`${server.url}/away`, { waitUntil: "domcontentloaded" });
  await asked; // no need to wait for its failure: TEST-NET-1 never answers
  assert.throws(() => p.assertLoopbackOnly(), /requests left loopback:\n {2}http:\/\/192\.0\.2\.1/);
});
