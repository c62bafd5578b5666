/**
 * Firmware campaigns end to end, as a user: upload an image, provision twins, run campaigns
 * against real MQTT clients acting as devices (npm:mqtt: they listen on their retained
 * `twins/{id}/desired`, download the image, and report `reported.firmware`), and watch it over
 * HTTP and the WebSocket stream. Two waves where the second starts only after the success
 * threshold; an automatic pause on failures that survives a restart and resumes; a closed
 * maintenance window that holds every offer.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import mqtt from "mqtt";
import {
  getJson,
  json,
  metric,
  metricBy,
  type NodeProcess,
  startNode,
  waitFor,
} from "../harness/mod.ts";

const TICK_MS = "100";

// deno-lint-ignore no-explicit-any
type Any = any;

/** A device: an MQTT client that records the firmware offers on its desired topic. */
class FakeDevice implements AsyncDisposable {
  offers: Any[] = [];
  private constructor(readonly id: string, readonly client: mqtt.MqttClient) {}

  static async connect(node: NodeProcess, id: string): Promise<FakeDevice> {
    const client = await mqtt.connectAsync(node.mqttUrl!, { clientId: id, reconnectPeriod: 0 });
    const d = new FakeDevice(id, client);
    client.on("message", (_topic, payload) => {
      const desired = JSON.parse(payload.toString());
      if (desired.firmware) d.offers.push(desired.firmware);
    });
    await client.subscribeAsync(`twins/${id}/desired`, { qos: 1 });
    return d;
  }

  /** Report `reported.firmware` as a device does (QoS 1: resolves on the PUBACK). */
  async report(firmware: Record<string, unknown>): Promise<void> {
    await this.client.publishAsync(`twins/${this.id}/reported`, JSON.stringify({ firmware }), {
      qos: 1,
    });
  }

  async [Symbol.asyncDispose]() {
    await this.client.endAsync(true);
  }
}

async function campaign(node: NodeProcess, id: string): Promise<Any> {
  const r = await getJson(`${node.httpUrl}/v1/campaigns/${id}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

async function device(node: NodeProcess, id: string, twin: string): Promise<Any> {
  const r = await getJson(`${node.httpUrl}/v1/campaigns/${id}/devices?limit=1000`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.items.find((d: Any) => d.id === twin);
}

/** Wait until the campaign's record of `twin` is in `state`. */
async function seen(node: NodeProcess, id: string, twin: string, state: string) {
  await waitFor(async () => (await device(node, id, twin))?.state === state, {
    message: `campaign ${id}: ${twin} recorded as ${state}`,
  });
}

async function desiredFirmware(node: NodeProcess, twin: string): Promise<unknown> {
  const r = await getJson(`${node.httpUrl}/v1/twins/${twin}`);
  assert.equal(r.status, 200);
  return r.body.desired.firmware;
}

async function provision(node: NodeProcess, ids: string[], attributes: Record<string, string>) {
  for (const id of ids) {
    const r = await getJson(`${node.httpUrl}/v1/twins/${id}`, json("PUT", { attributes }));
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
}

const range = (p: string, n: number) => Array.from({ length: n }, (_, i) => `${p}-${i + 1}`);

Deno.test("campaigns: waves, thresholds, automatic pause, restart, maintenance window", async (t) => {
  let node = await startNode({ TWINMILL_CAMPAIGN_TICK_MS: TICK_MS });
  const devices = new Map<string, FakeDevice>();
  const connect = async (ids: string[]) => {
    for (const id of ids) devices.set(id, await FakeDevice.connect(node, id));
  };
  const dev = (id: string) => devices.get(id)!;
  let ws: WebSocket | undefined;
  try {
    // the image: 64 KiB of bytes, uploaded as the raw body
    const image = crypto.getRandomValues(new Uint8Array(64 * 1024));
    const sha256 = createHash("sha256").update(image).digest("hex");
    const up = await getJson(`${node.httpUrl}/v1/firmware?name=press-fw&version=2.0.0`, {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: image,
    });
    assert.equal(up.status, 201, JSON.stringify(up.body));
    const fw = up.body.id;
    assert.equal(up.body.sha256, sha256);

    await provision(node, range("a", 6), { type: "press", group: "a" });
    await provision(node, range("b", 4), { type: "press", group: "b" });
    await provision(node, range("c", 2), { type: "press", group: "c" });
    await connect([...range("a", 6), ...range("b", 4), ...range("c", 2)]);

    ws = new WebSocket(`ws://127.0.0.1:${node.httpPort}/v1/stream?types=campaign`);
    const events: Any[] = [];
    ws.onmessage = (e) => events.push(JSON.parse(e.data));
    ws.onerror = () => {};
    await new Promise((r) => (ws!.onopen = r));
    await waitFor(async () => (await metric(node, "twinmill_ws_clients")) >= 1);

    await t.step("bad campaigns are refused with the field named", async () => {
      const bad = await getJson(
        `${node.httpUrl}/v1/campaigns`,
        json("POST", { name: "x", firmware: fw, selector: { group: "a" }, errorThreshold: 2 }),
      );
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, "campaign_invalid");
      assert.match(bad.body.error.message, /errorThreshold/);
      const missing = await getJson(
        `${node.httpUrl}/v1/campaigns`,
        json("POST", { name: "x", firmware: "nope-1.0", selector: { group: "a" } }),
      );
      assert.equal(missing.status, 404);
      assert.equal(missing.body.error.code, "firmware_not_found");
      const none = await getJson(`${node.httpUrl}/v1/campaigns/c-nope/pause`, json("POST"));
      assert.equal(none.status, 404);
      assert.equal(none.body.error.code, "campaign_not_found");
    });

    let a = "";
    await t.step("two waves: the second starts only after the success threshold", async () => {
      const r = await getJson(
        `${node.httpUrl}/v1/campaigns`,
        json("POST", {
          name: "group a to 2.0.0",
          firmware: fw,
          selector: { group: "a" },
          waves: [{ count: 2 }, { percent: 100 }],
          successThreshold: 1.0,
          errorThreshold: 0.5,
        }),
      );
      assert.equal(r.status, 201, JSON.stringify(r.body));
      a = r.body.id;
      assert.equal(r.body.state, "scheduled");

      // wave 1 = a-1, a-2 (id order) get the offer on their desired topic
      await waitFor(() => dev("a-1").offers.length > 0 && dev("a-2").offers.length > 0, {
        message: "wave 1 offered",
      });
      const offer = dev("a-1").offers[0];
      assert.deepEqual(offer, {
        version: "2.0.0",
        url: `/v1/firmware/${fw}/download`,
        sha256,
        size: image.length,
        campaign: a,
      });
      await waitFor(async () => (await campaign(node, a)).waves[0].counts.sent === 2);
      let c = await campaign(node, a);
      assert.equal(c.state, "running");
      assert.deepEqual(c.waves.map((w: Any) => w.size), [2, 4]);
      assert.equal(c.waves[1].counts.pending, 4);
      assert.equal(c.waves[1].state, "pending");

      // a-1 downloads the image from the offer's URL and checks it
      const got = new Uint8Array(await (await fetch(`${node.httpUrl}${offer.url}`)).arrayBuffer());
      assert.equal(createHash("sha256").update(got).digest("hex"), offer.sha256);
      await dev("a-1").report({ version: "2.0.0", state: "downloading", progress: 50 });
      await seen(node, a, "a-1", "downloading");
      await dev("a-1").report({ version: "2.0.0", state: "installing", progress: 100 });
      await seen(node, a, "a-1", "installing");
      await dev("a-1").report({ version: "2.0.0", state: "done", progress: 100 });
      await seen(node, a, "a-1", "done");
      await dev("a-2").report({ version: "2.0.0", state: "downloading", progress: 10 });
      await seen(node, a, "a-2", "downloading");

      // 1 of 2 done < 1.0: wave 2 has nothing yet
      c = await campaign(node, a);
      assert.equal(c.waves[1].state, "pending");
      assert.equal(c.currentWave, 1);
      for (const id of range("a", 6).slice(2)) {
        assert.equal(dev(id).offers.length, 0, id);
        assert.equal(await desiredFirmware(node, id), undefined, id);
      }
      // what Prometheus sees: one campaign running, its 6 devices by state
      const campaigns = await metricBy(node, "twinmill_campaigns", "state");
      assert.equal(campaigns.running, 1);
      assert.equal(campaigns.paused, 0);
      const inCampaign = await metricBy(node, "twinmill_campaign_devices", "state");
      assert.deepEqual(
        [inCampaign.done, inCampaign.downloading, inCampaign.pending, inCampaign.failed],
        [1, 1, 4, 0],
      );

      await dev("a-2").report({ version: "2.0.0", state: "done", progress: 100 });
      const wave2 = range("a", 6).slice(2);
      await waitFor(() => wave2.every((id) => dev(id).offers.length > 0), {
        message: "wave 2 offered after wave 1 is done",
      });
      for (const id of wave2) await dev(id).report({ version: "2.0.0", state: "done" });
      await waitFor(async () => (await campaign(node, a)).state === "completed", {
        message: "campaign a completed",
      });
      c = await campaign(node, a);
      assert.equal(c.reason, "6 of 6 done, 0 failed");
      assert.equal(c.progress.done, 6);
      assert.equal(c.progress.finished, 1);
      assert.deepEqual(c.waves.map((w: Any) => w.state), ["finished", "finished"]);

      // per-device history
      const h = (await device(node, a, "a-1")).history;
      assert.deepEqual(
        h.map((x: Any) => [x.state, x.progress, x.version]),
        [["sent", null, null], ["downloading", 50, "2.0.0"], ["installing", 100, "2.0.0"], [
          "done",
          100,
          "2.0.0",
        ]],
      );
      const done = await getJson(`${node.httpUrl}/v1/campaigns/${a}/devices?state=done&limit=4`);
      assert.equal(done.body.items.length, 4);
      assert.ok(done.body.next, "a next page");

      // the stream saw it: state changes in order, and both waves
      await waitFor(() => events.some((e) => e.twin === a && e.data.state === "completed"));
      const mine = events.filter((e) => e.twin === a);
      assert.ok(mine.every((e) => e.type === "campaign" && typeof e.version === "number"));
      assert.deepEqual(
        mine.filter((e) => e.data.event === "state").map((e) => e.data.state),
        ["scheduled", "running", "completed"],
      );
      assert.deepEqual(
        mine.filter((e) => e.data.event === "wave").map((e) => `${e.data.wave}:${e.data.phase}`),
        ["1:started", "1:finished", "2:started", "2:finished"],
      );
      assert.ok(
        mine.some((e) =>
          e.data.event === "device" && e.data.device === "a-1" && e.data.state === "installing"
        ),
      );

      ws!.close();
      const again = await getJson(`${node.httpUrl}/v1/campaigns/${a}/pause`, json("POST"));
      assert.equal(again.status, 409);
      assert.equal(again.body.error.code, "campaign_state_conflict");
    });

    let b = "";
    await t.step("failures pause it automatically; wave 2 untouched", async () => {
      const r = await getJson(
        `${node.httpUrl}/v1/campaigns`,
        json("POST", {
          name: "group b to 2.0.0",
          firmware: fw,
          selector: { group: "b" },
          waves: [{ count: 2 }, { percent: 100 }],
          successThreshold: 1.0,
          errorThreshold: 0.5,
        }),
      );
      assert.equal(r.status, 201, JSON.stringify(r.body));
      b = r.body.id;
      await waitFor(() => dev("b-1").offers.length > 0 && dev("b-2").offers.length > 0);
      await dev("b-1").report({ version: "2.0.0", state: "failed", error: "flash verify failed" });
      await waitFor(async () => (await campaign(node, b)).state === "paused", {
        message: "campaign b paused",
      });
      const c = await campaign(node, b);
      assert.equal(c.pausedBy, "error_threshold");
      assert.equal(c.reason, "error threshold 0.5 reached in wave 1 (1 of 2 failed)");
      assert.equal((await device(node, b, "b-1")).error, "flash verify failed");
      // a device already offered goes on and is still followed
      await dev("b-2").report({ version: "2.0.0", state: "done" });
      await seen(node, b, "b-2", "done");
      assert.equal((await campaign(node, b)).state, "paused");
      // Prometheus sees it paused once the driver has looked at it again
      await waitFor(
        async () => (await metricBy(node, "twinmill_campaigns", "state")).paused === 1,
        { message: 'twinmill_campaigns{state="paused"} is 1' },
      );
      assert.ok((await metricBy(node, "twinmill_campaign_devices", "state")).failed >= 1);
      for (const id of ["b-3", "b-4"]) {
        assert.equal(dev(id).offers.length, 0, id);
        assert.equal(await desiredFirmware(node, id), undefined, id);
      }
    });

    await t.step("it stays paused over a restart; resume continues with wave 2", async () => {
      for (const d of devices.values()) await d[Symbol.asyncDispose]();
      devices.clear();
      node = await node.restart();
      await connect(["b-3", "b-4"]);
      assert.equal((await campaign(node, b)).state, "paused");
      const r = await getJson(`${node.httpUrl}/v1/campaigns/${b}/resume`, json("POST"));
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.state, "running");
      await waitFor(() => dev("b-3").offers.length > 0 && dev("b-4").offers.length > 0, {
        message: "wave 2 of b offered after resume",
      });
      for (const id of ["b-3", "b-4"]) await dev(id).report({ version: "2.0.0", state: "done" });
      await waitFor(async () => (await campaign(node, b)).state === "completed");
      const c = await campaign(node, b);
      assert.equal(c.reason, "3 of 4 done, 1 failed");
      assert.equal(c.waves[0].override, true);
    });

    await t.step("a closed maintenance window holds the offers; cancel; delete", async () => {
      await connect(["c-1", "c-2"]);
      // a window that opens in two hours (UTC) and lasts one
      const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);
      const start = hhmm(Date.now() + 2 * 3_600_000);
      const end = hhmm(Date.now() + 3 * 3_600_000);
      const r = await getJson(
        `${node.httpUrl}/v1/campaigns`,
        json("POST", {
          name: "group c at night",
          firmware: fw,
          selector: { group: "c" },
          maintenanceWindow: { start, end, tz: "UTC" },
        }),
      );
      assert.equal(r.status, 201, JSON.stringify(r.body));
      const id = r.body.id;
      await waitFor(async () => (await campaign(node, id)).state === "waiting_window", {
        message: "campaign c waiting for its window",
      });
      const c = await campaign(node, id);
      assert.match(c.reason, new RegExp(`maintenance window ${start}-${end} UTC is closed`));
      assert.equal(c.waves[0].counts.pending, 2);
      for (const d of ["c-1", "c-2"]) {
        assert.equal(dev(d).offers.length, 0, d);
        assert.equal(await desiredFirmware(node, d), undefined, d);
      }
      const busy = await getJson(`${node.httpUrl}/v1/campaigns/${id}`, { method: "DELETE" });
      assert.equal(busy.status, 409);
      const x = await getJson(`${node.httpUrl}/v1/campaigns/${id}/cancel`, json("POST"));
      assert.equal(x.status, 200);
      assert.equal(x.body.state, "cancelled");
      await waitFor(async () => (await campaign(node, id)).progress.cancelled === 2);
      const del = await fetch(`${node.httpUrl}/v1/campaigns/${id}`, { method: "DELETE" });
      assert.equal(del.status, 204);
      await del.body?.cancel();
      assert.equal((await getJson(`${node.httpUrl}/v1/campaigns/${id}`)).status, 404);
      const list = await getJson(`${node.httpUrl}/v1/campaigns`);
      assert.deepEqual(list.body.items.map((x: Any) => x.id), [a, b]);
    });
  } finally {
    ws?.close();
    for (const d of devices.values()) await d[Symbol.asyncDispose]();
    await node[Symbol.asyncDispose]();
  }
});
