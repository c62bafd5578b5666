/**
 * Smoke test of what a node serves to a browser (headless Chromium, real node with a small
 * plant: two sites, six twins, an overheat alarm): the console's first load is error-free, stays
 * on the node and transfers at most 300 KB; a reload revalidates instead of downloading again;
 * a twin page draws values published while it is open. `/docs` renders Swagger UI on the node's
 * document with nothing fetched from another host (no CDN: the plant may be air-gapped).
 * The README's screenshots are this test's `smoke-fleet.png` and `smoke-twin.png`
 * (tests/artifacts/ → docs/img/console-fleet.png, console-twin.png).
 */
import assert from "node:assert/strict";
import { getJson, json, publishQos1, startNode, waitFor } from "../harness/mod.ts";
import type { NodeProcess } from "../harness/mod.ts";
import { launchBrowser } from "../harness/browser.ts";

/** The most a first load of the console may transfer (issue 18). */
const FIRST_LOAD_BYTES = 300 * 1024;

/** A small plant: two sites, three lines, presses with an overheat rule, ovens. */
const PLANT: [string, Record<string, string>][] = [
  ["press-1", { site: "A", line: "L1", type: "press" }],
  ["press-2", { site: "A", line: "L1", type: "press" }],
  ["press-3", { site: "A", line: "L2", type: "press" }],
  ["press-4", { site: "A", line: "L2", type: "press" }],
  ["oven-1", { site: "B", line: "L1", type: "oven" }],
  ["oven-2", { site: "B", line: "L1", type: "oven" }],
];

/** A device message with QoS 1, its PUBACK awaited. */
async function publish(node: NodeProcess, id: string, values: Record<string, number>) {
  const pub = await publishQos1(node, `twins/${id}/telemetry`, JSON.stringify(values));
  assert.equal(pub.code, 0, pub.stderr);
}

Deno.test("browser smoke: the console loads clean, from the node only, within 300 KB", async () => {
  await using node = await startNode();
  const rule = { id: "overheat", kind: "threshold", field: "temp", op: ">", value: 80, clear: 75 };
  const profile = await getJson(
    `${node.httpUrl}/v1/profiles/press`,
    json("PUT", { rules: [{ ...rule, severity: "critical" }] }),
  );
  assert.ok(profile.status < 300, JSON.stringify(profile.body));
  for (const [id, attributes] of PLANT) {
    const put = await getJson(`${node.httpUrl}/v1/twins/${id}`, json("PUT", { attributes }));
    assert.equal(put.status, 201, JSON.stringify(put.body));
    await publish(node, id, { temp: 60 + id.length, rpm: 1200 });
  }
  await publish(node, "press-3", { temp: 91 });
  await waitFor(async () => {
    const active = await getJson(`${node.httpUrl}/v1/alarms?state=active`);
    return active.body.items?.length === 1;
  }, { message: "press-3 overheats" });
  await using browser = await launchBrowser();
  const p = await browser.page({ viewport: { width: 1280, height: 1000 } });

  await p.page.goto(`${node.httpUrl}/`);
  await p.page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Fleet" })
    .waitFor();
  await p.page.getByText("oven-2").first().waitFor();
  await p.settled();
  p.assertNoPageErrors();
  p.assertLoopbackOnly();
  const first = p.transferred();
  const listing = p.requests.map((r) => `${r.status} ${r.transferred} ${r.url}`).join("\n  ");
  assert.ok(first <= FIRST_LOAD_BYTES, `first load ${first} bytes > 300 KB:\n  ${listing}`);
  const scripts = p.requests.filter((r) => r.resourceType === "script");
  assert.ok(scripts.length > 0, `the page loads its modules:\n  ${listing}`);
  assert.ok(scripts.every((r) => r.status === 200), listing);
  await p.screenshot("smoke-fleet", { fullPage: false });

  // a reload revalidates the page (no-cache; Chromium shows the 304 as the cached 200) and
  // finds the modules in its cache or revalidates them: headers only on the wire
  const before = p.requests.length;
  await p.page.reload();
  await p.page.getByText("oven-2").first().waitFor();
  await p.settled();
  const again = p.requests.slice(before).filter((r) => {
    const path = new URL(r.url).pathname;
    return path === "/" || path.startsWith("/console/");
  });
  assert.ok(again.some((r) => new URL(r.url).pathname === "/"), "the page is asked again");
  for (const r of again) assert.ok(r.transferred < 1024, `${r.url}: ${r.transferred} bytes again`);

  // the twin page, live: values published while it is open make its chart
  const temps = Array.from({ length: 30 }, (_, i) => Math.round(86 + 7 * Math.sin(i / 3)));
  await publish(node, "press-3", { temp: temps[0], rpm: 1150 + temps[0] });
  await p.page.goto(`${node.httpUrl}/#/twins/press-3`);
  await p.page.getByRole("heading", { name: "press-3" }).waitFor();
  await p.page.getByText("overheat").first().waitFor();
  for (const temp of temps.slice(1)) await publish(node, "press-3", { temp, rpm: 1150 + temp });
  await p.page.getByText(`${temps.length} points`).first().waitFor();
  await p.settled();
  await p.page.evaluate("window.scrollTo(0, 0)");
  await p.screenshot("smoke-twin", { fullPage: false });
  p.assertNoPageErrors();
  p.assertLoopbackOnly();
});

Deno.test("browser smoke: /docs renders Swagger UI from the node, offline", async () => {
  await using node = await startNode();
  await using browser = await launchBrowser();
  const p = await browser.page();
  await p.page.goto(`${node.httpUrl}/docs`);
  await p.page.getByRole("heading", { name: /twinmill/ }).first().waitFor();
  // an operation of the document is listed
  await p.page.getByText("/v1/twins/{id}", { exact: true }).first().waitFor();
  await p.settled();
  p.assertNoPageErrors();
  p.assertLoopbackOnly();
  const paths = p.requests.map((r) => new URL(r.url).pathname);
  for (const want of ["/docs/assets/swagger-ui-bundle.js", "/openapi.json"]) {
    assert.ok(paths.includes(want), `${want} requested: ${paths.join(" ")}`);
  }
  await p.screenshot("smoke-docs");
});
