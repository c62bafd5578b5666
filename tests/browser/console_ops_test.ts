/**
 * The console's operations in a real browser: commands sent from a twin's page and answered
 * by a device, a firmware campaign paused and resumed, a provisioning key and a device token
 * issued and revoked (an admin: anonymous on loopback); and in a cluster, a node's console
 * showing the nodes and a twin's new values live whichever node hosts it. No page error;
 * screenshots in tests/artifacts/.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import {
  getJson,
  json,
  metric,
  mosquittoPub,
  type NodeProcess,
  startNats,
  startNode,
  waitFor,
} from "../harness/mod.ts";
import { sharedBy } from "../harness/cluster_wait.ts";
import { launchBrowser } from "../harness/browser.ts";

const publish = async (node: NodeProcess, id: string, payload: unknown, kind = "telemetry") => {
  const r = await mosquittoPub([
    ...["-h", "127.0.0.1", "-p", String(node.mqttPort), "-q", "1"],
    ...["-t", `twins/${id}/${kind}`, "-m", JSON.stringify(payload)],
  ]);
  assert.equal(r.code, 0, r.stderr);
};

Deno.test("console: commands, a campaign paused and resumed, provisioning keys, device tokens", async () => {
  await using node = await startNode({ TWINMILL_CAMPAIGN_TICK_MS: "200" });
  await publish(node, "robot-1", { axis: 1 });
  // the device answers every command
  const dev = await mqtt.connectAsync(node.mqttUrl!, { clientId: "robot-1", reconnectPeriod: 0 });
  dev.on("message", (topic) => {
    dev.publish(`${topic}/result`, JSON.stringify({ status: "ok", result: { done: true } }), {
      qos: 1,
    });
  });
  await dev.subscribeAsync("twins/robot-1/commands/+", { qos: 1 });
  try {
    await using browser = await launchBrowser();
    const c = await browser.page();
    const page = c.page;
    page.on("dialog", (d) => void d.accept()); // confirmations of deletions
    await page.goto(`${node.httpUrl}/#/twins/robot-1`);
    await page.getByText(/ · MQTT session on /).waitFor(); // the device's connection, from diagnostics
    await page.getByLabel("Command name").fill("home");
    await page.getByLabel("Arguments (JSON)").fill('{"axis": 3}');
    await page.getByRole("button", { name: "Send command" }).click();
    await page.getByRole("row", { name: /^home\b/ }).getByText("succeeded").waitFor();
    await c.screenshot("console-twin-command");

    // a campaign over two presses, one per wave
    for (const id of ["hx-1", "hx-2"]) {
      const r = await getJson(
        `${node.httpUrl}/v1/twins/${id}`,
        json("PUT", { attributes: { type: "press", model: "hx-200" } }),
      );
      assert.equal(r.status, 201);
    }
    const fw = await fetch(`${node.httpUrl}/v1/firmware?name=press-fw&version=2.0.0`, {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: new Uint8Array(4096),
    });
    assert.equal(fw.status, 201, await fw.text());
    const created = await getJson(
      `${node.httpUrl}/v1/campaigns`,
      json("POST", {
        name: "presses",
        firmware: "press-fw-2.0.0",
        selector: { model: "hx-200" },
        waves: [{ count: 1 }, { percent: 100 }],
      }),
    );
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const campaignUrl = `${node.httpUrl}/v1/campaigns/${created.body.id}`;
    await waitFor(async () => (await getJson(campaignUrl)).body.state === "running");
    await page.goto(`${node.httpUrl}/#/ops`);
    await page.getByRole("row", { name: /^press-fw-2\.0\.0 2\.0\.0 4\.0 KiB unsigned/ }).waitFor();
    const card = page.getByRole("article", { name: "Campaign presses" });
    await card.getByText("running", { exact: true }).first().waitFor();
    await card.getByRole("progressbar", { name: "Wave 1: 0 of 1 done" }).waitFor();
    await publish(node, "hx-1", { firmware: { version: "2.0.0", state: "done" } }, "reported");
    await card.getByRole("progressbar", { name: "Wave 1: 1 of 1 done" }).waitFor();
    await card.getByRole("button", { name: "Pause campaign presses" }).click();
    await card.getByText("paused", { exact: true }).waitFor();
    assert.equal((await getJson(campaignUrl)).body.state, "paused");
    await c.screenshot("console-ops-campaign");
    await card.getByRole("button", { name: "Resume campaign presses" }).click();
    await card.getByRole("button", { name: "Pause campaign presses" }).waitFor();
    assert.notEqual((await getJson(campaignUrl)).body.state, "paused");

    // a provisioning key: shown once, then listed
    await page.getByLabel("Key name").fill("line 3 presses");
    await page.getByLabel("Site").fill("plant-1");
    await page.getByRole("button", { name: "Create provisioning key" }).click();
    const key = await page.getByLabel("New provisioning key").innerText();
    assert.match(key, /^tmpk_[0-9a-f]{12}_/);
    const keys = (await getJson(`${node.httpUrl}/v1/provisioning-keys`)).body.items;
    assert.equal(keys.length, 1);
    assert.deepEqual(keys[0].template, { site: "plant-1" });
    await page.getByRole("row", { name: new RegExp(`^${keys[0].id} line 3 presses`) }).waitFor();

    // a device token: issued (shown once), listed, revoked
    await page.getByLabel("Twin id").fill("robot-1");
    await page.getByRole("button", { name: "Issue a token" }).click();
    assert.ok((await page.getByLabel("New device token").innerText()).length >= 32);
    await page.getByRole("button", { name: "Show credentials" }).click();
    const revoke = page.getByRole("button", { name: /^Revoke credential / });
    await revoke.waitFor();
    await c.screenshot("console-ops-admin");
    await revoke.click();
    await page.getByText("No credentials for robot-1.").waitFor();
    assert.deepEqual(
      (await getJson(`${node.httpUrl}/v1/twins/robot-1/credentials`)).body.items,
      [],
    );
    await page.getByRole("button", { name: `Delete provisioning key ${keys[0].id}` }).click();
    await page.getByText("No provisioning keys.").waitFor();
    c.assertNoPageErrors();
  } finally {
    await dev.endAsync();
  }
});

Deno.test("console: any node of a cluster serves it, with the nodes and live twins of all", async () => {
  await using nats = await startNats({ jetstream: true });
  const env = { NATS_URL: nats.url, TWINMILL_SHARDS: "8" };
  await using n1 = await startNode({ ...env, TWINMILL_NODE_ID: "c1" });
  await using n2 = await startNode({ ...env, TWINMILL_NODE_ID: "c2" });
  await sharedBy(n1, 2);
  // devices on c1; the console on c2
  for (let i = 0; i < 4; i++) await publish(n1, `cell-${i}`, { load: i });
  await using browser = await launchBrowser();
  const c = await browser.page();
  const page = c.page;
  await page.goto(`${n2.httpUrl}/#/ops`);
  await page.getByRole("row", { name: /^c1 / }).waitFor();
  await page.getByRole("row", { name: /^c2 / }).waitFor();
  await c.screenshot("console-ops-cluster");
  for (let i = 0; i < 4; i++) {
    await page.goto(`${n2.httpUrl}/#/twins/cell-${i}`);
    const load = page.getByRole("row", { name: /^load\b/ });
    await load.getByText(String(i), { exact: true }).waitFor();
    await page.getByText("Live", { exact: true }).waitFor();
    await waitFor(async () => (await metric(n2, "twinmill_ws_clients")) === 1);
    await publish(n1, `cell-${i}`, { load: 10 + i });
    await load.getByText(String(10 + i), { exact: true }).waitFor({ timeout: 2000 });
  }
  c.assertNoPageErrors();
});
