/**
 * `/metrics` as Prometheus scrapes it: every twinmill metric has `# HELP` and `# TYPE`,
 * counters move with device and HTTP traffic, the gauges read live state, and no label
 * value is a device id (cardinality stays bounded however many devices there are).
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { getJson, metric, publishQos1, startNode, waitFor } from "../harness/mod.ts";
import { assertPromtoolClean } from "../harness/promtool.ts";

Deno.test("metrics: counters move with traffic, HELP/TYPE everywhere, no device id in labels", async () => {
  await using node = await startNode();
  const before = {
    received: await metric(node, "twinmill_mqtt_messages_received_total").catch(() => 0),
    http: await metric(node, "twinmill_http_requests_total").catch(() => 0),
  };
  const ids = Array.from({ length: 20 }, (_, i) => `zz-unique-device-${i}`);
  for (const id of ids) {
    const r = await publishQos1(node, `twins/${id}/telemetry`, '{"temp": 21.5}');
    assert.equal(r.code, 0, r.stderr);
  }
  await publishQos1(node, `twins/${ids[0]}/telemetry`, "nope");
  for (const id of ids) await (await fetch(`${node.httpUrl}/v1/twins/${id}`)).body?.cancel();
  const dev = await mqtt.connectAsync(node.mqttUrl!, {
    clientId: "metrics-dev",
    reconnectPeriod: 0,
  });
  await dev.publishAsync(`twins/${ids[1]}/telemetry`, '{"temp": 1}', { qos: 1 });

  await waitFor(async () =>
    (await metric(node, "twinmill_mqtt_messages_received_total")) - before.received >= 21
  );
  assert.equal(await metric(node, "twinmill_mqtt_messages_rejected_total"), 1);
  assert.equal(await metric(node, "twinmill_mqtt_messages_acked_total") >= 21, true);
  assert.ok((await metric(node, "twinmill_http_requests_total")) - before.http >= 20);
  assert.equal(await metric(node, "twinmill_devices_connected"), 1, "the npm:mqtt device");
  assert.equal(await metric(node, "twinmill_mqtt_connections"), 1);
  assert.ok((await metric(node, "twinmill_twin_activations_total")) >= 20);
  assert.ok((await metric(node, "twinmill_mqtt_ack_latency_seconds_count")) >= 21);
  assert.ok((await metric(node, "twinmill_event_loop_lag_seconds_count")) >= 1);
  assert.ok((await metric(node, "twinmill_process_resident_memory_bytes")) > 10_000_000);
  assert.equal(await metric(node, "twinmill_actor_mailbox_depth"), 0);
  await dev.endAsync(true);

  const text = await (await fetch(`${node.httpUrl}/metrics`)).text();
  const names = new Set<string>();
  for (const line of text.split("\n")) {
    const m = /^(twinmill_[a-z_]+?)(_bucket|_sum|_count)?(\{| )/.exec(line);
    if (m) names.add(text.includes(`# TYPE ${m[1]} `) ? m[1] : `${m[1]}${m[2] ?? ""}`);
  }
  assert.ok(names.size > 40, `${names.size} metrics`);
  for (const n of names) {
    assert.ok(text.includes(`# HELP ${n} `), `# HELP of ${n}`);
    assert.ok(text.includes(`# TYPE ${n} `), `# TYPE of ${n}`);
  }
  for (const line of text.split("\n").filter((l) => l.startsWith("twinmill_"))) {
    for (const id of ids) assert.ok(!line.includes(id), `device id in a label: ${line}`);
    assert.ok(!line.includes("metrics-dev"), `client id in a label: ${line}`);
  }
  // units as Prometheus expects: durations in seconds, sizes in bytes, counters end in _total
  for (const line of text.split("\n").filter((l) => l.startsWith("# TYPE twinmill_"))) {
    const [, , name, type] = line.split(" ");
    if (type === "counter") assert.match(name, /_total$/, line);
    assert.doesNotMatch(name, /_(ms|milliseconds|kb|mb)(_|$)/, line);
  }
});

Deno.test("metrics: a live scrape with labelled samples passes promtool check metrics, no warning", async () => {
  await using node = await startNode();
  // traffic that creates labelled samples: an accepted message (kind), a rejected one
  // (reason), HTTP requests (route, method, status) with a 200 and a 404
  assert.equal((await publishQos1(node, "twins/promtool-1/telemetry", '{"temp": 20}')).code, 0);
  await publishQos1(node, "twins/promtool-1/telemetry", '{"a": {"b": 1}}');
  await waitFor(async () => (await getJson(`${node.httpUrl}/v1/twins/promtool-1`)).status === 200);
  assert.equal((await getJson(`${node.httpUrl}/v1/twins/promtool-unknown`)).status, 404);
  await waitFor(async () => (await metric(node, "twinmill_mqtt_messages_rejected_total")) >= 1);

  const scrape = await (await fetch(`${node.httpUrl}/metrics`)).text();
  for (const labelled of ["kind", "reason", "route"]) {
    assert.match(scrape, new RegExp(`^twinmill_[a-z_]+\\{[^}]*${labelled}="`, "m"), labelled);
  }
  await assertPromtoolClean(scrape);
});
