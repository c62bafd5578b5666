/**
 * Device profiles end to end, as a user: PUT a profile, publish with `mosquitto_pub`, watch
 * alarms over HTTP and WebSocket, acknowledge, clear, restart the node and find the alarm
 * history intact; every rule kind at least once; invalid profiles refused with a clear
 * message; rollups, alarm transitions and deadband filtering checked in a real InfluxDB.
 */
import assert from "node:assert/strict";
import {
  getJson,
  type InfluxServer,
  json,
  metric,
  type NodeProcess,
  publishQos1,
  startInfluxd,
  startNode,
  waitFor,
} from "../harness/mod.ts";

/** Publish one QoS 1 message with the real `mosquitto_pub`. */
async function pub(node: NodeProcess, topic: string, body: unknown) {
  const r = await publishQos1(node, topic, JSON.stringify(body));
  assert.equal(r.code, 0, r.stderr);
}

async function alarms(node: NodeProcess, query: string) {
  const { status, body } = await getJson(`${node.httpUrl}/v1/alarms?${query}`);
  assert.equal(status, 200, JSON.stringify(body));
  return body.items as Array<Record<string, unknown>>;
}

async function influxRows(influx: InfluxServer, q: string): Promise<unknown[][]> {
  const r = await influx.query(q, "rules");
  if (r?.results?.[0]?.error) throw new Error(`InfluxDB: ${r.results[0].error}`);
  return r?.results?.[0]?.series?.[0]?.values ?? [];
}

/** A minute boundary an hour ago: message timestamps are chosen relative to it. */
const T0 = Math.floor((Date.now() - 3_600_000) / 60_000) * 60_000;

const PRESS = {
  description: "hydraulic press",
  rules: [
    {
      id: "overheat",
      kind: "threshold",
      field: "temp",
      op: ">",
      value: 80,
      clear: 75,
      severity: "critical",
      actions: [{ on: "raise", type: "desired", patch: { fan: "max" } }],
    },
    { id: "rpm-band", kind: "deadband", field: "rpm", band: 10 },
    {
      id: "per-minute",
      kind: "window",
      fields: ["temp"],
      seconds: 60,
      aggs: ["avg", "max", "count"],
    },
    { id: "vibration", kind: "anomaly", field: "vib", warmup: 5, zLimit: 3, severity: "major" },
    {
      id: "pressure-jump",
      kind: "rate",
      field: "bar",
      limit: 5,
      windowSeconds: 10,
      severity: "minor",
    },
    { id: "hot-and-slow", kind: "expression", expr: "temp > 80 && rpm < 100", severity: "warning" },
  ],
};

Deno.test("rules: profiles, every rule kind, the alarm lifecycle, restart, hot reload", async (t) => {
  await using influx = await startInfluxd();
  let node = await startNode({ INFLUX_URL: influx.url, INFLUX_API: "v1", INFLUX_DB: "rules" });
  try {
    await t.step("an invalid profile is refused with a message naming the field", async () => {
      const bad = await getJson(
        `${node.httpUrl}/v1/profiles/press`,
        json("PUT", { rules: [{ id: "x", kind: "threshold", field: "temp", op: "=>", value: 1 }] }),
      );
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, "profile_invalid");
      assert.match(bad.body.error.message, /rules\[0\]\.op/);
      const expr = await getJson(
        `${node.httpUrl}/v1/profiles/press`,
        json("PUT", { rules: [{ id: "e", kind: "expression", expr: "temp >" }] }),
      );
      assert.equal(expr.status, 400);
      assert.match(expr.body.error.message, /rules\[0\]\.expr/);
      assert.equal((await getJson(`${node.httpUrl}/v1/profiles/press`)).status, 404);
    });

    await t.step("PUT a profile; twins of that type use it", async () => {
      const r = await getJson(`${node.httpUrl}/v1/profiles/press`, json("PUT", PRESS));
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(r.body.name, "press");
      assert.equal(r.body.profile.rules.length, 6);
      const list = await getJson(`${node.httpUrl}/v1/profiles`);
      assert.deepEqual(list.body.items.map((p: { name: string }) => p.name), ["press"]);
      const put = await getJson(
        `${node.httpUrl}/v1/twins/press-1`,
        json("PUT", { attributes: { type: "press", site: "A" } }),
      );
      assert.equal(put.status, 201);
    });

    const ws = new WebSocket(
      `ws://127.0.0.1:${node.httpPort}/v1/stream?twins=press-1&types=alarm`,
    );
    // deno-lint-ignore no-explicit-any
    const events: any[] = [];
    ws.onmessage = (e) => events.push(JSON.parse(e.data));
    await new Promise((r) => (ws.onopen = r));
    await waitFor(async () => (await metric(node, "twinmill_ws_clients")) >= 1);

    let alarmId = "";
    await t.step("threshold: raise over HTTP and WebSocket, desired action applied", async () => {
      await pub(node, "twins/press-1/telemetry", { temp: 70, rpm: 1000, ts: T0 });
      await pub(node, "twins/press-1/telemetry", { temp: 85, rpm: 1004, ts: T0 + 1000 });
      const active = await waitFor(async () => {
        const a = await alarms(node, "state=active&twin=press-1");
        return a.find((x) => x.rule === "overheat");
      }, { message: "overheat alarm active" });
      assert.ok(active);
      alarmId = String(active.id);
      assert.equal(alarmId, "press-1:overheat:1");
      assert.equal(active.severity, "critical");
      assert.equal(active.value, 85);
      assert.equal(active.acknowledged, false);
      const twin = await getJson(`${node.httpUrl}/v1/twins/press-1`);
      assert.deepEqual(twin.body.alarms.map((a: { rule: string }) => a.rule), ["overheat"]);
      assert.deepEqual(twin.body.desired, { fan: "max" });
      const raised = await waitFor(
        () => events.find((e) => e.type === "alarm" && e.data.change === "raised"),
        { message: "raise event on the WebSocket" },
      );
      // read your own writes: the event carries the version after the message that raised it
      assert.equal(raised.version, twin.body.version, JSON.stringify(raised));
    });

    await t.step("acknowledge with a comment, then clear below the hysteresis", async () => {
      const ack = await getJson(
        `${node.httpUrl}/v1/alarms/${encodeURIComponent(alarmId)}/ack`,
        json("POST", { comment: "maintenance on the way" }),
      );
      assert.equal(ack.status, 200, JSON.stringify(ack.body));
      assert.equal(ack.body.state, "acknowledged");
      assert.equal(ack.body.ackComment, "maintenance on the way");
      const missing = await getJson(
        `${node.httpUrl}/v1/alarms/press-1:overheat:99/ack`,
        json("POST", {}),
      );
      assert.equal(missing.status, 404);
      assert.equal(missing.body.error.code, "alarm_not_found");
      await pub(node, "twins/press-1/telemetry", { temp: 78, rpm: 1006, ts: T0 + 2000 });
      assert.equal((await alarms(node, "state=acknowledged&twin=press-1")).length, 1);
      await pub(node, "twins/press-1/telemetry", { temp: 74, rpm: 1030, ts: T0 + 61_000 });
      const cleared = await waitFor(async () => {
        const a = await alarms(node, "state=cleared&twin=press-1");
        return a.find((x) => x.id === alarmId);
      }, { message: "overheat cleared" });
      assert.ok(cleared);
      assert.equal(cleared.acknowledged, true);
      await waitFor(() => events.some((e) => e.data?.change === "cleared"));
      assert.deepEqual(
        events.map((e) => e.data.change).filter((c) => c !== "updated"),
        ["raised", "acknowledged", "cleared"],
      );
    });

    await t.step("anomaly, rate and expression raise their own alarms", async () => {
      for (const [i, vib] of [1.0, 1.1, 0.9, 1.0, 1.05, 1.0].entries()) {
        await pub(node, "twins/press-1/telemetry", { vib, ts: T0 + 62_000 + i * 1000 });
      }
      await pub(node, "twins/press-1/telemetry", { vib: 9, ts: T0 + 70_000 });
      await pub(node, "twins/press-1/telemetry", { bar: 10, ts: T0 + 71_000 });
      await pub(node, "twins/press-1/telemetry", { bar: 60, ts: T0 + 72_000 });
      await pub(node, "twins/press-1/telemetry", { temp: 90, rpm: 50, ts: T0 + 73_000 });
      await waitFor(async () => {
        const rules = (await alarms(node, "state=active&twin=press-1")).map((a) => a.rule);
        return ["vibration", "pressure-jump", "hot-and-slow", "overheat"].every((r) =>
          rules.includes(r)
        );
      }, { message: "vibration, pressure-jump, hot-and-slow and overheat active" });
      const hot = (await alarms(node, "severity=warning")).find((a) => a.rule === "hot-and-slow");
      assert.ok(hot, "severity filter finds the expression alarm");
    });

    await t.step("InfluxDB: alarm transitions, 1-minute rollups, deadband filtering", async () => {
      await waitFor(async () => {
        const rows = await influxRows(
          influx,
          `SELECT "state" FROM "alarms" WHERE "device" = 'press-1' AND "rule" = 'overheat'`,
        );
        return rows.length >= 4; // raised, acknowledged, cleared, raised again
      }, { message: "overheat transitions in measurement alarms" });
      const rollup = await influxRows(
        influx,
        `SELECT "temp_avg", "temp_max", "temp_count" FROM "rollup" WHERE "device" = 'press-1'`,
      );
      // the first minute (T0..T0+59 s) held 70, 85, 78: closed by the sample at T0 + 61 s
      assert.deepEqual(rollup[0].slice(1), [(70 + 85 + 78) / 3, 85, 3]);
      const rpm = await influxRows(
        influx,
        `SELECT "rpm" FROM "telemetry" WHERE "device" = 'press-1' AND "rpm" > 0`,
      );
      // 1000 written, 1004 and 1006 inside the band, 1030 and 50 written
      assert.deepEqual(rpm.map((r) => r[1]), [1000, 1030, 50]);
      assert.ok((await metric(node, "twinmill_telemetry_fields_suppressed_total")) >= 2);
    });

    await t.step(
      "stale: a silent twin raises without any message; the next one clears",
      async () => {
        const sensor = { rules: [{ id: "silent", kind: "stale", seconds: 2, severity: "info" }] };
        assert.equal(
          (await getJson(`${node.httpUrl}/v1/profiles/env`, json("PUT", sensor))).status,
          201,
        );
        await getJson(
          `${node.httpUrl}/v1/twins/env-1`,
          json("PUT", { attributes: { profile: "env" } }),
        );
        await pub(node, "twins/env-1/telemetry", { hum: 40 });
        await waitFor(async () => (await alarms(node, "state=active&twin=env-1")).length === 1, {
          timeoutMs: 15_000,
          message: "stale alarm raised by the timer",
        });
        await pub(node, "twins/env-1/telemetry", { hum: 41 });
        await waitFor(async () => (await alarms(node, "state=active&twin=env-1")).length === 0, {
          message: "stale alarm cleared by the next message",
        });
      },
    );

    ws.close();
    await new Promise((r) => (ws.onclose = r));

    await t.step("restart: profiles and the alarm history survive", async () => {
      const before = await alarms(node, "twin=press-1&limit=1000");
      node = await node.restart();
      const after = await alarms(node, "twin=press-1&limit=1000");
      assert.deepEqual(after, before);
      assert.equal((await getJson(`${node.httpUrl}/v1/profiles/press`)).status, 200);
      // paging walks the same alarms
      const page1 = await getJson(`${node.httpUrl}/v1/alarms?limit=2`);
      assert.equal(page1.body.items.length, 2);
      const page2 = await getJson(`${node.httpUrl}/v1/alarms?limit=1000&cursor=${page1.body.next}`);
      const all = await alarms(node, "limit=1000");
      assert.deepEqual([...page1.body.items, ...page2.body.items], all);
    });

    await t.step("hot reload: a changed threshold applies at once; deleting clears", async () => {
      const raised = { ...PRESS, rules: [{ ...PRESS.rules[0], value: 200, clear: 150 }] };
      assert.equal(
        (await getJson(`${node.httpUrl}/v1/profiles/press`, json("PUT", raised))).status,
        200,
      );
      // the twin reconciles on its next tick: rules gone from the profile clear
      await waitFor(async () => {
        const rules = (await alarms(node, "state=active&twin=press-1")).map((a) => a.rule);
        return rules.length === 1 && rules[0] === "overheat";
      }, { message: "only overheat left after the reload", timeoutMs: 15_000 });
      await pub(node, "twins/press-1/telemetry", { temp: 120 });
      await waitFor(async () => (await alarms(node, "state=active&twin=press-1")).length === 0, {
        message: "120 is below the new clear level 150",
      });
      await pub(node, "twins/press-1/telemetry", { temp: 210 });
      await waitFor(async () => (await alarms(node, "state=active&twin=press-1")).length === 1);
      const del = await fetch(`${node.httpUrl}/v1/profiles/press`, { method: "DELETE" });
      assert.equal(del.status, 204);
      await waitFor(async () => (await alarms(node, "state=active&twin=press-1")).length === 0, {
        message: "deleting the profile clears its alarms",
        timeoutMs: 15_000,
      });
    });
  } finally {
    await node[Symbol.asyncDispose]();
  }
});

Deno.test("rules: a rule that divides by zero is faulted, counted, and the twin carries on", async () => {
  await using node = await startNode();
  const p = { rules: [{ id: "ratio", kind: "expression", expr: "temp / rpm > 1" }] };
  assert.equal((await getJson(`${node.httpUrl}/v1/profiles/m`, json("PUT", p))).status, 201);
  await getJson(`${node.httpUrl}/v1/twins/m-1`, json("PUT", { attributes: { type: "m" } }));
  await pub(node, "twins/m-1/telemetry", { temp: 5, rpm: 0 });
  await pub(node, "twins/m-1/telemetry", { temp: 5, rpm: 1 });
  await waitFor(async () => (await getJson(`${node.httpUrl}/v1/twins/m-1`)).body.version === 3);
  assert.equal(await metric(node, "twinmill_rule_faults_total"), 1);
  const twin = await getJson(`${node.httpUrl}/v1/twins/m-1`);
  assert.equal(twin.body.alarms[0].rule, "ratio", "the next message evaluates again and raises");
  const profile = await getJson(`${node.httpUrl}/v1/profiles/m`);
  assert.equal(profile.body.status.rules[0].rule, "ratio");
  assert.equal(profile.body.status.rules[0].faults, 1);
  assert.match(profile.body.status.rules[0].lastFault, /zero/);
});

Deno.test("rules: a webhook action POSTs the alarm; a dead endpoint is retried, then counted", async () => {
  const calls: Array<Record<string, unknown>> = [];
  let failFirst = true;
  await using hook = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const body = await req.json();
    if (failFirst) {
      failFirst = false;
      return new Response("busy", { status: 503 });
    }
    calls.push({ ...body, auth: req.headers.get("x-api-key") });
    return new Response(null, { status: 204 });
  });
  await using node = await startNode();
  const url = `http://127.0.0.1:${hook.addr.port}/alarms`;
  const profile = {
    rules: [{
      id: "overheat",
      kind: "threshold",
      field: "temp",
      op: ">",
      value: 80,
      severity: "critical",
      actions: [
        { on: "raise", type: "webhook", url, headers: { "x-api-key": "s3cret-value" } },
        { on: "clear", type: "webhook", url, headers: { "x-api-key": "s3cret-value" } },
      ],
    }],
  };
  assert.equal(
    (await getJson(`${node.httpUrl}/v1/profiles/kiln`, json("PUT", profile))).status,
    201,
  );
  await getJson(`${node.httpUrl}/v1/twins/kiln-1`, json("PUT", { attributes: { type: "kiln" } }));
  await pub(node, "twins/kiln-1/telemetry", { temp: 90 });
  await waitFor(() => calls.length === 1, {
    timeoutMs: 15_000,
    message: "raise webhook after a retry",
  });
  await pub(node, "twins/kiln-1/telemetry", { temp: 20 });
  await waitFor(() => calls.length === 2, { message: "clear webhook" });
  assert.deepEqual(calls.map((c) => c.event), ["raise", "clear"]);
  assert.equal(calls[0].twin, "kiln-1");
  assert.equal((calls[0].alarm as { id: string }).id, "kiln-1:overheat:1");
  assert.equal(calls[0].auth, "s3cret-value");
  await waitFor(async () => (await metric(node, "twinmill_webhooks_total")) === 2);
  assert.ok(!node.logs.some((l) => l.includes("s3cret-value")), "header values are never logged");
});
