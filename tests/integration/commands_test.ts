/**
 * Commands end to end, as a user: real MQTT devices (`npm:mqtt`, `mosquitto_sub`) answer
 * sync and async commands; a device that stays silent times out; commands for an offline
 * device queue and arrive when it subscribes, also after a node restart; a full queue is
 * refused with 409; the WebSocket stream shows each command's status changes.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import {
  findBinary,
  getJson,
  metric,
  type NodeProcess,
  publishQos1,
  startNode,
  waitFor,
} from "../harness/mod.ts";

const post = (body: unknown): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

async function provision(node: NodeProcess, id: string) {
  const r = await fetch(`${node.httpUrl}/v1/twins/${id}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ attributes: { type: "press" } }),
  });
  const text = await r.text();
  assert.ok(r.status < 300, text);
}

/**
 * A device that listens for its commands and answers each with `answer(cmd)` (or not at all
 * when it returns undefined); `seen` collects every command it received.
 */
async function device(
  node: NodeProcess,
  id: string,
  answer: (cmd: { id: string; name: string; args: Record<string, unknown> }) => unknown,
) {
  const client = await mqtt.connectAsync(node.mqttUrl!, {
    clientId: `dev-${id}`,
    reconnectPeriod: 0,
  });
  const seen: Array<{ id: string; name: string; args: Record<string, unknown> }> = [];
  client.on("message", (topic, payload) => {
    const cmd = JSON.parse(payload.toString());
    seen.push(cmd);
    const a = answer(cmd);
    if (a !== undefined) client.publish(`${topic}/result`, JSON.stringify(a), { qos: 1 });
  });
  await client.subscribeAsync(`twins/${id}/commands/+`, { qos: 1 });
  return { seen, [Symbol.asyncDispose]: () => client.endAsync(true) };
}

async function command(node: NodeProcess, twin: string, id: string) {
  const { status, body } = await getJson(`${node.httpUrl}/v1/twins/${twin}/commands/${id}`);
  assert.equal(status, 200, JSON.stringify(body));
  return body;
}

Deno.test("commands: sync and async round trips, device errors, timeouts, bad input", async () => {
  await using node = await startNode();
  await provision(node, "press-1");
  await using _dev = await device(
    node,
    "press-1",
    (cmd) =>
      cmd.name === "fail"
        ? { status: "error", error: { reason: "jammed" } }
        : cmd.name === "ignore"
        ? undefined
        : { status: "ok", result: { echo: cmd.args, name: cmd.name } },
  );

  // sync: the device's result in the answer
  const sync = await getJson(
    `${node.httpUrl}/v1/twins/press-1/commands`,
    post({ name: "setSpeed", args: { rpm: 1200 }, mode: "sync", timeoutMs: 5000 }),
  );
  assert.equal(sync.status, 200, JSON.stringify(sync.body));
  assert.equal(sync.body.status, "succeeded");
  assert.deepEqual(sync.body.result, { echo: { rpm: 1200 }, name: "setSpeed" });
  assert.equal(sync.body.deliveries, 1);
  assert.ok(sync.body.deliveredAt && sync.body.finishedAt);

  // async: 202 at once, then succeeded
  const a = await getJson(
    `${node.httpUrl}/v1/twins/press-1/commands`,
    post({ name: "reboot", mode: "async" }),
  );
  assert.equal(a.status, 202, JSON.stringify(a.body));
  assert.ok(["pending", "delivered", "succeeded"].includes(a.body.status));
  await waitFor(async () => (await command(node, "press-1", a.body.id)).status === "succeeded");

  // the device reports an error: failed, with its error
  const f = await getJson(
    `${node.httpUrl}/v1/twins/press-1/commands`,
    post({ name: "fail", mode: "sync" }),
  );
  assert.equal(f.status, 200);
  assert.equal(f.body.status, "failed");
  assert.deepEqual(f.body.error, { reason: "jammed" });

  // a device that never answers: 504 command_timeout, then expired
  const t0 = Date.now();
  const t = await getJson(
    `${node.httpUrl}/v1/twins/press-1/commands`,
    post({ name: "ignore", mode: "sync", timeoutMs: 600 }),
  );
  assert.equal(t.status, 504, JSON.stringify(t.body));
  assert.equal(t.body.error.code, "command_timeout");
  assert.ok(Date.now() - t0 >= 550, "waited for the timeout");
  const listed = await getJson(`${node.httpUrl}/v1/twins/press-1/commands`);
  const ignored = listed.body.items.find((c: { name: string }) => c.name === "ignore");
  assert.ok(ignored, "listed");
  assert.equal(listed.body.items[0].name, "ignore", "newest first");
  await waitFor(async () => (await command(node, "press-1", ignored.id)).status === "expired", {
    timeoutMs: 5000,
  });

  // bad input and unknown things
  const cases: Array<[string, unknown, number, string]> = [
    ["press-1", { name: "bad name!" }, 400, "bad_request"],
    ["press-1", { name: "x", mode: "sync", timeoutMs: 120_000 }, 400, "bad_timeout"],
    ["press-1", { name: "x", args: { blob: "x".repeat(20_000) } }, 400, "args_too_large"],
    ["nobody", { name: "x" }, 404, "twin_not_found"],
  ];
  for (const [twin, body, status, code] of cases) {
    const r = await getJson(`${node.httpUrl}/v1/twins/${twin}/commands`, post(body));
    assert.equal(r.status, status, JSON.stringify(r.body));
    if (code !== "bad_request") assert.equal(r.body.error.code, code);
  }
  const missing = await getJson(`${node.httpUrl}/v1/twins/press-1/commands/nope`);
  assert.equal(missing.status, 404);
  assert.equal(missing.body.error.code, "command_not_found");

  const metrics = await (await fetch(`${node.httpUrl}/metrics`)).text();
  assert.match(metrics, /twinmill_commands_total\{status="succeeded"\} [2-9]/);
  assert.match(metrics, /twinmill_commands_total\{status="expired"\} 1/);
});

Deno.test("commands: queued while offline, delivered on subscribe (mosquitto_sub), survive restart, bounded", async () => {
  await using node0 = await startNode();
  let node = node0;
  await provision(node, "press-2");
  await provision(node, "press-3");

  // offline: pending
  const q = await getJson(
    `${node.httpUrl}/v1/twins/press-2/commands`,
    post({ name: "calibrate", args: { axis: "x" } }),
  );
  assert.equal(q.status, 202);
  assert.equal(q.body.status, "pending");

  // the WebSocket sees the status changes
  const ws = new WebSocket(
    `${node.httpUrl.replace("http", "ws")}/v1/stream?twins=press-2&types=command`,
  );
  const events: Array<{ type: string; data: { id: string; status: string } }> = [];
  ws.onmessage = (e) => events.push(JSON.parse(e.data));
  await new Promise((r) => (ws.onopen = r));

  // a device comes online with mosquitto_sub: it gets the queued command
  const sub = new Deno.Command(findBinary("mosquitto_sub", "mosquitto-clients"), {
    args: [
      "-h",
      "127.0.0.1",
      "-p",
      String(node.mqttPort),
      "-q",
      "1",
      "-i",
      "press-2-sub",
      "-t",
      "twins/press-2/commands/+",
      "-C",
      "1",
      "-v",
      "-W",
      "10",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = await sub;
  const line = new TextDecoder().decode(out.stdout).trim();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const [topic, payload] = [line.slice(0, line.indexOf(" ")), line.slice(line.indexOf(" ") + 1)];
  assert.equal(topic, `twins/press-2/commands/${q.body.id}`);
  assert.deepEqual(JSON.parse(payload), { id: q.body.id, name: "calibrate", args: { axis: "x" } });
  await waitFor(async () => (await command(node, "press-2", q.body.id)).status === "delivered");
  // the device answers later, from another connection
  const p = await publishQos1(
    node,
    `twins/press-2/commands/${q.body.id}/result`,
    '{"status":"ok","result":{"offset":0.02}}',
  );
  assert.equal(p.code, 0, p.stderr);
  await waitFor(async () => (await command(node, "press-2", q.body.id)).status === "succeeded");
  assert.deepEqual((await command(node, "press-2", q.body.id)).result, { offset: 0.02 });
  await waitFor(() => events.length >= 2);
  assert.deepEqual(
    events.map((e) => [e.type, e.data.id, e.data.status]),
    [["command", q.body.id, "delivered"], ["command", q.body.id, "succeeded"]],
  );
  ws.close();

  // bounded: 16 open commands per twin, the 17th is refused
  for (let i = 0; i < 16; i++) {
    const r = await getJson(`${node.httpUrl}/v1/twins/press-3/commands`, post({ name: `c${i}` }));
    assert.equal(r.status, 202, JSON.stringify(r.body));
  }
  const full = await getJson(`${node.httpUrl}/v1/twins/press-3/commands`, post({ name: "c16" }));
  assert.equal(full.status, 409);
  assert.equal(full.body.error.code, "command_queue_full");

  // restart: the 16 queued commands survive and are delivered when the device subscribes
  node = await node.restart();
  await using _restarted = node;
  const listed = await getJson(`${node.httpUrl}/v1/twins/press-3/commands`);
  assert.equal(
    listed.body.items.filter((c: { status: string }) => c.status === "pending").length,
    16,
  );
  await using dev = await device(node, "press-3", () => ({ status: "ok" }));
  await waitFor(() => dev.seen.length === 16);
  assert.deepEqual(
    dev.seen.map((c) => c.name).sort(),
    Array.from({ length: 16 }, (_, i) => `c${i}`).sort(),
  );
  await waitFor(async () => {
    const l = await getJson(`${node.httpUrl}/v1/twins/press-3/commands`);
    return l.body.items.filter((c: { status: string }) => c.status === "succeeded").length === 16;
  });
});

Deno.test("commands: a device with a persistent session gets queued commands on reconnect without subscribing again", async () => {
  await using node = await startNode();
  await provision(node, "press-4");
  const opts = { clientId: "press-4-persistent", clean: false, reconnectPeriod: 0 };
  const first = await mqtt.connectAsync(node.mqttUrl!, opts);
  await first.subscribeAsync("twins/press-4/commands/+", { qos: 1 });
  await first.endAsync(true);
  // the device is gone (the node has seen the connection close) before the command is sent
  await waitFor(async () => (await metric(node, "twinmill_mqtt_connections")) === 0);
  const q = await getJson(`${node.httpUrl}/v1/twins/press-4/commands`, post({ name: "wake" }));
  assert.equal(q.status, 202);
  assert.equal(q.body.status, "pending");
  // no SUBSCRIBE this time; listen before connecting: the command may come with the CONNACK
  const again = mqtt.connect(node.mqttUrl!, opts);
  const got: string[] = [];
  again.on("message", (_t, p) => got.push(JSON.parse(p.toString()).name));
  await new Promise((resolve) => again.once("connect", resolve));
  await waitFor(() => got.length === 1, { message: "the queued command arrives" });
  assert.deepEqual(got, ["wake"]);
  assert.equal((await command(node, "press-4", q.body.id)).status, "delivered");
  await again.endAsync(true);
});

Deno.test("commands: a persistent-session device reconnecting at once (session takeover) still gets its command", async () => {
  await using node = await startNode();
  await provision(node, "press-5");
  const opts = { clientId: "press-5-persistent", clean: false, reconnectPeriod: 0 };
  const first = await mqtt.connectAsync(node.mqttUrl!, opts);
  await first.subscribeAsync("twins/press-5/commands/+", { qos: 1 });
  // the command may reach the old connection while it closes; the new one gets it (again)
  await first.endAsync(true);
  const q = await getJson(`${node.httpUrl}/v1/twins/press-5/commands`, post({ name: "wake" }));
  assert.equal(q.status, 202);
  const again = mqtt.connect(node.mqttUrl!, opts);
  const got: string[] = [];
  again.on("message", (_t, p) => got.push(JSON.parse(p.toString()).id));
  await new Promise((resolve) => again.once("connect", resolve));
  await waitFor(() => got.length >= 1, { message: "the command arrives on the new connection" });
  assert.ok(got.every((id) => id === q.body.id), "at least once, the same command id");
  await again.endAsync(true);
});
