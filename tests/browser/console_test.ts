/**
 * The operator console in a real browser (headless Debian Chromium through playwright-core)
 * against a real node with API keys and devices that publish with `mosquitto_pub`: the fleet
 * and twins views list a twin a device created, its page shows the reported value and a new
 * one within a second without reload, a threshold alarm appears and an operator acknowledges
 * it with a comment (the API agrees), an edit while only reported values changed goes
 * through, a stale desired edit (the desired state changed) shows the conflict with the
 * current value, a profile's validation error is shown at its rule; a viewer is offered no
 * acknowledgement and no desired editor. No script error in the page console all along;
 * screenshots of each page in tests/artifacts/.
 */
import assert from "node:assert/strict";
import {
  freePort,
  getJson,
  metric,
  mosquittoPub,
  startInfluxd,
  startNode,
  waitFor,
  waitForInfluxCount,
} from "../harness/mod.ts";
import type { NodeProcess } from "../harness/mod.ts";
import { launchBrowser, type WatchedPage } from "../harness/browser.ts";

const ADMIN = "admin-key-0123456789abcdef";
const OPERATOR = "operator-key-0123456789abcd";
const VIEWER = "viewer-key-0123456789abcdef";
const SITE_A = "site-a-viewer-0123456789";

async function api(node: NodeProcess, method: string, path: string, body?: unknown) {
  const r = await fetch(`${node.httpUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

const publish = async (node: NodeProcess, id: string, payload: unknown) => {
  const r = await mosquittoPub([
    "-h",
    "127.0.0.1",
    "-p",
    String(node.mqttPort),
    "-q",
    "1",
    "-t",
    `twins/${id}/telemetry`,
    "-m",
    JSON.stringify(payload),
  ]);
  assert.equal(r.code, 0, r.stderr);
};

/** Waits until the node streams to exactly `n` WebSocket clients (the page's stream is up). */
const streaming = (node: NodeProcess, n = 1) =>
  waitFor(async () => (await metric(node, "twinmill_ws_clients")) === n, {
    message: `${n} stream client(s)`,
  });

async function signIn(p: WatchedPage, key: string) {
  await p.page.getByLabel("API key or JWT").fill(key);
  await p.page.getByRole("button", { name: "Sign in" }).click();
  await p.page.getByRole("dialog").waitFor({ state: "hidden" });
}

Deno.test("console: fleet, twin page live, alarm acknowledged, desired conflict, roles", async () => {
  await using node = await startNode({
    TWINMILL_HTTP_PORT: String(await freePort()),
    TWINMILL_API_KEYS: `${ADMIN}:admin,${OPERATOR}:operator,${VIEWER}:viewer,${SITE_A}:viewer:A`,
  });
  const profile = await api(node, "PUT", "/v1/profiles/press", {
    rules: [{
      id: "overheat",
      kind: "threshold",
      field: "temp",
      op: ">",
      value: 80,
      clear: 75,
      severity: "critical",
    }],
  });
  assert.equal(profile.status, 201);
  await publish(node, "press-7", { temp: 21.5, rpm: 1200 });
  const put = await api(node, "PUT", "/v1/twins/press-7", {
    attributes: { type: "press", site: "A", line: "L1" },
  });
  assert.equal(put.status, 200);

  await using browser = await launchBrowser();
  const op = await browser.page();
  const page = op.page;
  await page.goto(`${node.httpUrl}/#/`);
  // the node has API keys: the console asks for one
  await signIn(op, OPERATOR);
  await page.getByText(/ · operator$/).waitFor();
  // the fleet view lists the twin the device created
  await page.getByRole("link", { name: "press-7" }).waitFor();
  await page.getByRole("row", { name: /^A L1 1 0 0 1\b/ }).waitFor(); // twins, online, offline, unknown
  // live: the device says it is online
  await page.getByText("Live", { exact: true }).waitFor();
  await streaming(node);
  const status = await mosquittoPub([
    ...["-h", "127.0.0.1", "-p", String(node.mqttPort), "-q", "1"],
    ...["-t", "twins/press-7/status", "-m", "online"],
  ]);
  assert.equal(status.code, 0, status.stderr);
  await page.getByRole("row", { name: /^A L1 1 1 0 0\b/ }).waitFor();
  await op.screenshot("console-fleet");

  await page.goto(`${node.httpUrl}/#/twins`);
  await page.getByRole("row", { name: /^press-7\b/ }).getByText("21.5").waitFor();
  await op.screenshot("console-twins");

  // its page shows the reported value; a new one arrives within a second, without reload
  await page.getByRole("link", { name: "press-7" }).click();
  await page.getByRole("heading", { name: "press-7", level: 1 }).waitFor();
  const temp = page.getByRole("row", { name: /^temp\b/ });
  await temp.getByText("21.5", { exact: true }).waitFor();
  await page.getByText("Live", { exact: true }).waitFor();
  await streaming(node);
  const sent = performance.now();
  await publish(node, "press-7", { temp: 22.5 });
  await temp.getByText("22.5", { exact: true }).waitFor({ timeout: 1000 });
  const took = performance.now() - sent;
  assert.ok(took < 1000, `the new value took ${took.toFixed(0)} ms`);

  // a threshold alarm appears on the twin's page
  await publish(node, "press-7", { temp: 91 });
  const alarmRow = page.getByRole("row", { name: /^overheat press-7:overheat:1/ });
  await alarmRow.waitFor();
  await op.screenshot("console-twin");

  const version = async () =>
    (await getJson(`${node.httpUrl}/v1/twins/press-7`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    })).body.version;
  // an edit while only reported values change (every message is a version): it goes through
  const editor = page.getByLabel(/^Desired state patch/);
  await editor.fill('{"speed": 3}');
  const v0 = await version();
  await publish(node, "press-7", { temp: 90 });
  await waitFor(async () => await version() > v0);
  await page.getByRole("button", { name: "Send desired state" }).click();
  await page.getByText(/^Sent: .* but not its desired state/).waitFor();
  assert.deepEqual((await api(node, "GET", "/v1/twins/press-7")).body.desired, { speed: 3 });

  // a stale desired edit: the desired state changes while the operator edits
  await editor.fill('{"rpm": 1500}');
  const v = (await getJson(`${node.httpUrl}/v1/twins/press-7`, {
    headers: { authorization: `Bearer ${ADMIN}` },
  })).body.version;
  await api(node, "PATCH", "/v1/twins/press-7/desired", { mode: "auto" });
  await waitFor(async () =>
    (await getJson(`${node.httpUrl}/v1/twins/press-7`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    })).body.version > v
  );
  await page.getByRole("button", { name: "Send desired state" }).click();
  const conflict = page.getByRole("alert").filter({ hasText: "Version conflict" });
  await conflict.waitFor();
  await conflict.getByLabel("Current desired state").getByText(/"mode": "auto"/).waitFor();
  await op.screenshot("console-twin-conflict");
  const unchanged = await api(node, "GET", "/v1/twins/press-7");
  assert.deepEqual(unchanged.body.desired, { speed: 3, mode: "auto" });
  // sent again over the current version, it applies
  await conflict.getByRole("button", { name: /^Send my change over version/ }).click();
  await page.getByText(/^Sent: the twin is at version/).waitFor();
  assert.deepEqual((await api(node, "GET", "/v1/twins/press-7")).body.desired, {
    speed: 3,
    mode: "auto",
    rpm: 1500,
  });

  // the operator acknowledges the alarm with a comment on the alarms page
  await page.goto(`${node.httpUrl}/#/alarms`);
  const row = page.getByRole("row", { name: /^overheat press-7:overheat:1/ });
  await row.getByLabel("Comment for press-7:overheat:1").fill("on it");
  await row.getByRole("button", { name: "Acknowledge press-7:overheat:1" }).click();
  await page.getByText("0 alarms (active), page 1").waitFor(); // it left the active ones
  await page.getByLabel("State").selectOption("acknowledged");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.getByRole("row", { name: /^overheat press-7:overheat:1/ }).getByText("on it")
    .waitFor();
  const acked = await api(node, "GET", "/v1/alarms?twin=press-7");
  assert.equal(acked.body.items[0].acknowledged, true);
  assert.equal(acked.body.items[0].ackComment, "on it");
  await op.screenshot("console-alarms");

  // profiles: an operator reads them; the ops page shows campaigns and the single node
  await page.goto(`${node.httpUrl}/#/profiles/press`);
  await page.getByLabel("Profile press").getByText('"overheat"').waitFor();
  await op.screenshot("console-profiles");
  await page.goto(`${node.httpUrl}/#/ops`);
  await page.getByText("Single node: this node is not in cluster mode.").waitFor();
  assert.equal(await page.getByRole("heading", { name: "Provisioning keys" }).count(), 0);
  await op.screenshot("console-ops");
  op.assertNoPageErrors();

  // a viewer is offered no acknowledgement and no desired editor
  const viewer = await browser.page();
  await viewer.page.goto(`${node.httpUrl}/#/alarms?state=`);
  await signIn(viewer, VIEWER);
  await viewer.page.getByRole("row", { name: /^overheat press-7:overheat:1/ }).waitFor();
  await publish(node, "press-8", { temp: 95 });
  await api(node, "PUT", "/v1/twins/press-8", { attributes: { type: "press", site: "B" } });
  await publish(node, "press-8", { temp: 96 });
  await viewer.page.getByRole("row", { name: /^overheat press-8:overheat:1/ }).waitFor();
  assert.equal(await viewer.page.getByRole("button", { name: /^Acknowledge/ }).count(), 0);
  await viewer.page.goto(`${node.httpUrl}/#/twins/press-8`);
  await viewer.page.getByRole("heading", { name: "press-8", level: 1 }).waitFor();
  await viewer.page.getByText("Your role may read the desired state").waitFor();
  assert.equal(await viewer.page.getByRole("button", { name: /^Acknowledge/ }).count(), 0);
  assert.equal(await viewer.page.getByRole("button", { name: "Send desired state" }).count(), 0);
  await viewer.screenshot("console-twin-viewer");
  viewer.assertNoPageErrors();

  // a viewer of site A sees site A's twins only
  const scoped = await browser.page();
  await scoped.page.goto(`${node.httpUrl}/#/twins`);
  await signIn(scoped, SITE_A);
  await scoped.page.getByRole("link", { name: "press-7" }).waitFor();
  assert.equal(await scoped.page.getByRole("link", { name: "press-8" }).count(), 0);
  await scoped.page.goto(`${node.httpUrl}/#/`);
  await scoped.page.getByRole("row", { name: /^A L1 1\b/ }).waitFor();
  assert.equal(await scoped.page.getByRole("row", { name: /^B\b/ }).count(), 0);
  scoped.assertNoPageErrors();
});

Deno.test("console: an admin sees a profile's validation error at the rule and field, faulted rules", async () => {
  await using node = await startNode({});
  await using browser = await launchBrowser();
  const adm = await browser.page();
  const page = adm.page;
  await page.goto(`${node.httpUrl}/#/profiles/press`);
  // anonymous on loopback: no sign-in
  await page.getByText("anonymous · admin").waitFor();
  await page.getByRole("button", { name: "Add a rule" }).click();
  const rule = page.getByLabel("Rule 1", { exact: true });
  await rule.fill(JSON.stringify({ id: "hot", kind: "threshold", field: "temp", op: "=>" }));
  await page.getByRole("button", { name: "Save profile" }).click();
  const errorId = await rule.getAttribute("aria-describedby");
  await page.locator(`[id="${errorId}"]`).filter({ hasText: /^op: / }).waitFor();
  assert.equal(await rule.getAttribute("aria-invalid"), "true");
  await adm.screenshot("console-profile-error");
  await rule.fill(
    JSON.stringify({ id: "hot", kind: "threshold", field: "temp", op: ">", value: 80 }),
  );
  await page.getByRole("button", { name: "Save profile" }).click();
  await page.getByText(/^Saved \(created\)/).waitFor();

  // a rule that faults (a division by zero) says so on its profile and on its twin
  const put = await fetch(`${node.httpUrl}/v1/profiles/div`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      rules: [{ id: "ratio", kind: "expression", expr: "temp / (rpm - rpm) > 1" }],
    }),
  });
  assert.equal(put.status, 201);
  const twin = await fetch(`${node.httpUrl}/v1/twins/d-1`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ attributes: { type: "div" } }),
  });
  assert.equal(twin.status, 201);
  await publish(node, "d-1", { temp: 5, rpm: 3 });
  await waitFor(async () =>
    (await getJson(`${node.httpUrl}/v1/profiles/div`)).body.status.rules.length > 0
  );
  await page.goto(`${node.httpUrl}/#/profiles/div`);
  await page.getByText(/^Faulted on this node: 1 failed evaluations, .*: Division by zero/)
    .waitFor();
  await page.goto(`${node.httpUrl}/#/twins/d-1`);
  await page.getByRole("listitem").filter({ hasText: /^ratio \(expression\) faulted 1 failed/ })
    .waitFor();
  adm.assertNoPageErrors();
});

Deno.test("console: the stream reconnects by itself after a node restart and says so meanwhile", async () => {
  const node = await startNode({ TWINMILL_HTTP_PORT: String(await freePort()) });
  await publish(node, "mixer-1", { speed: 10 });
  await using browser = await launchBrowser();
  const c = await browser.page();
  const page = c.page;
  await page.goto(`${node.httpUrl}/#/twins/mixer-1`);
  const speed = page.getByRole("row", { name: /^speed\b/ });
  await speed.getByText("10", { exact: true }).waitFor();
  await page.getByText("Live", { exact: true }).waitFor();
  await node.kill();
  // the page's reconnection attempts while the node is down
  c.allow(
    /^(websocket error: |failed request: |console error: WebSocket connection to ').*\/v1\/stream/,
  );
  await page.getByText(/^Disconnected from the node: reconnecting/).waitFor();
  await c.screenshot("console-disconnected");
  await using again = await node.restart();
  await page.getByText("Live", { exact: true }).waitFor({ timeout: 20_000 });
  await streaming(again);
  await publish(again, "mixer-1", { speed: 11 });
  await speed.getByText("11", { exact: true }).waitFor({ timeout: 2000 });
  c.assertNoPageErrors();
});

Deno.test("console: a twin's chart is back-filled from history when InfluxDB is configured", async () => {
  await using influx = await startInfluxd();
  await using node = await startNode({ INFLUX_URL: influx.url, INFLUX_API: "v1" });
  const now = Date.now();
  // five readings a minute apart, in the last hour: five 10 s buckets of history
  for (let k = 5; k >= 1; k--) {
    await publish(node, "oven-1", { temp: 200 + k, ts: now - k * 60_000 });
  }
  await waitForInfluxCount(influx, "twinmill", "oven-1", 5);
  await using browser = await launchBrowser();
  const c = await browser.page();
  await c.page.goto(`${node.httpUrl}/#/twins/oven-1`);
  await c.page.getByText("The last hour from history (10 s means), then live.").waitFor();
  const chart = c.page.getByRole("group", { name: "Chart of temp" });
  // the history's five points (the twin's current value, the last of them, may be a sixth)
  await chart.getByText(/^[56] points, min 201, max 205/).waitFor({ timeout: 5000 }).catch(
    async (e) => {
      throw new Error(`chart: ${await chart.innerText()}`, { cause: e });
    },
  );
  await c.screenshot("console-twin-history");
  c.assertNoPageErrors();
});

Deno.test("console: a live chart keeps the last 600 points of a chatty device", async () => {
  await using node = await startNode({});
  await publish(node, "fan-1", { rpm: 0 });
  await using browser = await launchBrowser();
  const c = await browser.page();
  await c.page.goto(`${node.httpUrl}/#/twins/fan-1`);
  await c.page.getByText("Live", { exact: true }).waitFor();
  await streaming(node);
  const lines = Array.from({ length: 700 }, (_, i) => JSON.stringify({ rpm: i + 1 })).join("\n");
  const r = await mosquittoPub(
    [
      "-h",
      "127.0.0.1",
      "-p",
      String(node.mqttPort),
      "-q",
      "1",
      "-t",
      "twins/fan-1/telemetry",
      "-l",
    ],
    lines + "\n",
  );
  assert.equal(r.code, 0, r.stderr);
  const chart = c.page.getByRole("group", { name: "Chart of rpm" });
  await chart.getByText(/^600 points, min 101, max 700/).waitFor();
  await c.page.getByRole("row", { name: /^rpm\b/ }).getByText("700", { exact: true }).waitFor();
  c.assertNoPageErrors();
});
