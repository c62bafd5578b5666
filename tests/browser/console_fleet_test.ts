/**
 * The console's fleet page from `GET /v1/fleet`, in a real browser against a real node: three
 * twins on two sites, one online, one with an active alarm — the cards and the rows per site
 * and line show exactly that, follow a device coming online without a reload, and a viewer
 * scoped to one site sees that site only.
 */
import assert from "node:assert/strict";
import { freePort, mosquittoPub, startNode } from "../harness/mod.ts";
import type { NodeProcess } from "../harness/mod.ts";
import { launchBrowser, type WatchedPage } from "../harness/browser.ts";

const ADMIN = "admin-key-0123456789abcdef";
const EAST = "east-viewer-0123456789abc";

async function api(node: NodeProcess, method: string, path: string, body?: unknown) {
  const r = await fetch(`${node.httpUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

async function pub(node: NodeProcess, topic: string, message: string) {
  const r = await mosquittoPub([
    ...["-h", "127.0.0.1", "-p", String(node.mqttPort), "-q", "1"],
    ...["-t", topic, "-m", message],
  ]);
  assert.equal(r.code, 0, r.stderr);
}

async function signIn(p: WatchedPage, key: string) {
  await p.page.getByLabel("API key or JWT").fill(key);
  await p.page.getByRole("button", { name: "Sign in" }).click();
  await p.page.getByRole("dialog").waitFor({ state: "hidden" });
}

Deno.test("console fleet: counts by site and line from /v1/fleet, live, site-scoped", async () => {
  await using node = await startNode({
    TWINMILL_HTTP_PORT: String(await freePort()),
    TWINMILL_API_KEYS: `${ADMIN}:admin,${EAST}:viewer:east`,
  });
  const profile = await api(node, "PUT", "/v1/profiles/kiln", {
    rules: [{ id: "hot", kind: "threshold", field: "temp", op: ">", value: 80, severity: "major" }],
  });
  assert.equal(profile.status, 201);
  for (
    const [id, attributes] of [
      ["kiln-1", { type: "kiln", site: "east", line: "L1" }],
      ["kiln-2", { type: "kiln", site: "east", line: "L1" }],
      ["kiln-3", { type: "kiln", site: "west", line: "L2" }],
    ] as const
  ) {
    assert.equal((await api(node, "PUT", `/v1/twins/${id}`, { attributes })).status, 201);
  }
  await pub(node, "twins/kiln-1/status", "online");
  await pub(node, "twins/kiln-3/telemetry", JSON.stringify({ temp: 95 }));

  await using browser = await launchBrowser();
  const admin = await browser.page();
  const page = admin.page;
  await page.goto(`${node.httpUrl}/#/`);
  await signIn(admin, ADMIN);
  // rows: site, line, twins, online, offline, unknown, open alarms, messages/s
  await page.getByRole("row", { name: /^east L1 2 1 0 1 0 / }).waitFor();
  await page.getByRole("row", { name: /^west L2 1 0 0 1 1 / }).waitFor();
  const twinsCard = page.getByRole("article").filter({ hasText: "Twins" });
  await twinsCard.getByRole("paragraph").filter({ hasText: /^3$/ }).waitFor();
  const alarmsCard = page.getByRole("article").filter({ hasText: "Open alarms" });
  await alarmsCard.getByRole("definition").nth(1).getByText("1", { exact: true }).waitFor(); // major
  await admin.screenshot("console-fleet-sites");
  // live: kiln-2 comes online, without a reload
  await pub(node, "twins/kiln-2/status", "online");
  await page.getByRole("row", { name: /^east L1 2 2 0 0 0 / }).waitFor({ timeout: 5_000 });
  // the row's twin count opens the twins of that site and line
  await page.getByRole("row", { name: /^west L2/ }).getByRole("link", { name: "1" }).click();
  await page.getByRole("link", { name: "kiln-3" }).waitFor();

  // a viewer of site east sees east only (polled: no stream of every twin)
  const east = await browser.page();
  await east.page.goto(`${node.httpUrl}/#/`);
  await signIn(east, EAST);
  await east.page.getByRole("row", { name: /^east L1 2 2 0 0 0 / }).waitFor();
  assert.equal(await east.page.getByRole("row", { name: /^west/ }).count(), 0);
  await east.page.getByRole("article").filter({ hasText: "Twins" }).getByRole("paragraph")
    .filter({ hasText: /^2$/ }).waitFor();
});
