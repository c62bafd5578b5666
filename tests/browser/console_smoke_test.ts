/**
 * Smoke test of what a node serves to a browser (headless Chromium, real node with a small
 * plant: two sites, six twins, an overheat alarm): the console's first load is error-free, stays
 * on the node and transfers at most 300 KB; a reload revalidates instead of downloading again;
 * a twin page draws values published while it is open. `/docs` renders Swagger UI on the node's
 * document with nothing fetched from another host (no CDN: the plant may be air-gapped).
 * In dark mode (`prefers-color-scheme: dark`) every page loads clean, every control reached with
 * Tab shows its focus ring, and the twin page's alarms table fits its card at 1280 and 800 px;
 * its screenshots are `dark-*.png`.
 * The README's screenshots are this test's `smoke-fleet.png` and `smoke-twin.png`
 * (tests/artifacts/ → docs/img/console-fleet.png, console-twin.png).
 */
import assert from "node:assert/strict";
import { getJson, json, publishQos1, startNode, waitFor } from "../harness/mod.ts";
import type { NodeProcess } from "../harness/mod.ts";
import { launchBrowser } from "../harness/browser.ts";
import type { Page } from "playwright-core";

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

/** The plant on the node: the presses' overheat rule, the twins, press-3 overheating. */
async function plant(node: NodeProcess) {
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
}

/** How far the twin page's alarms table runs past its card (0: it fits). */
function alarmsOverflow(page: Page): Promise<number> {
  return page.getByRole("region", { name: "Alarms" }).evaluate((el) =>
    el.scrollWidth - el.clientWidth
  );
}

Deno.test("browser smoke: the console loads clean, from the node only, within 300 KB", async () => {
  await using node = await startNode();
  await plant(node);
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
  assert.equal(await alarmsOverflow(p.page), 0, "the alarms table fits its card");
  await p.page.evaluate("window.scrollTo(0, 0)");
  await p.screenshot("smoke-twin", { fullPage: false });
  p.assertNoPageErrors();
  p.assertLoopbackOnly();
});

/** Every page of the console, by hash route, and its level-1 heading. */
const PAGES: [string, string, string][] = [
  ["fleet", "#/", "Fleet"],
  ["twins", "#/twins", "Twins"],
  ["twin", "#/twins/press-3", "press-3"],
  ["alarms", "#/alarms", "Alarms"],
  ["profiles", "#/profiles", "Profiles"],
  ["ops", "#/ops", "Operations"],
];

/** In the page: the focused control, and whether its outline shows (null: none focused). */
const FOCUSED = `(() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const s = getComputedStyle(el);
  const ring = s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2;
  const name = el.getAttribute("aria-label") ?? el.textContent.trim().slice(0, 30);
  return { ring, what: el.tagName.toLowerCase() + ' "' + name + '"' };
})()`;

/**
 * Tabs through the page and returns the controls that took focus without a visible focus
 * ring (`:focus-visible` outline); stops when focus leaves the page or after `max` steps.
 */
async function focusWithoutRing(page: Page, max = 80): Promise<string[]> {
  const bare: string[] = [];
  await page.evaluate("document.activeElement?.blur(); window.scrollTo(0, 0)");
  for (let i = 0; i < max; i++) {
    await page.keyboard.press("Tab");
    const seen = await page.evaluate<{ ring: boolean; what: string } | null>(FOCUSED);
    if (!seen) break;
    if (!seen.ring) bare.push(seen.what);
  }
  return bare;
}

Deno.test("browser smoke: dark mode, every page clean, focus visible, tables fit", async () => {
  await using node = await startNode();
  await plant(node);
  await using browser = await launchBrowser();
  const p = await browser.page({ viewport: { width: 1280, height: 1000 }, colorScheme: "dark" });
  for (const [name, route, heading] of PAGES) {
    await p.page.goto(`${node.httpUrl}/${route}`);
    await p.page.getByRole("heading", { level: 1, name: heading }).waitFor();
    await p.settled();
    p.assertNoPageErrors();
    assert.deepEqual(await focusWithoutRing(p.page), [], `${name}: focus without a ring`);
    await p.screenshot(`dark-${name}`);
  }
  await p.page.setViewportSize({ width: 800, height: 1000 });
  await p.page.goto(`${node.httpUrl}/#/twins/press-3`);
  await p.page.getByText("overheat").first().waitFor();
  await p.settled();
  assert.equal(await alarmsOverflow(p.page), 0, "at 800 px, the alarms table fits its card");
  await p.screenshot("dark-twin-800");
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
