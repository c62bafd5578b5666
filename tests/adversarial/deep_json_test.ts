/**
 * Adversarial: JSON nested far deeper than any device or application needs. A 10,000-deep
 * desired PATCH used to answer 200, then kill the node (snapshot persistence and the
 * downlink's `JSON.stringify` overflowed the stack) and lose the change; a 4,000-deep
 * `reported` over MQTT restarted the twin's actor without being counted. Now both are refused
 * by the JSON intake before anything is applied: HTTP 400 `payload_too_deep`, MQTT rejected
 * and counted as `payload_too_deep`; the node and the twin's state are untouched.
 */
import assert from "node:assert/strict";
import { getJson, metric, metricBy, publishQos1, startNode, waitFor } from "../harness/mod.ts";

const nested = (depth: number) => `{"a":${"[".repeat(depth)}${"]".repeat(depth)}}`;

const json = (method: string, body: string) => ({
  method,
  headers: { "content-type": "application/json" },
  body,
});

Deno.test("deep JSON: a 10,000-deep desired PATCH is 400 payload_too_deep; the node lives on, state intact", async () => {
  await using node = await startNode({});
  const url = `${node.httpUrl}/v1/twins/press-1`;
  assert.equal((await getJson(url, json("PUT", '{"attributes":{"site":"A"}}'))).status, 201);
  assert.equal((await getJson(`${url}/desired`, json("PATCH", '{"speed":5}'))).status, 200);

  const r = await getJson(`${url}/desired`, json("PATCH", nested(10_000)));
  assert.equal(r.status, 400, JSON.stringify(r.body).slice(0, 300));
  assert.equal(r.body.error.code, "payload_too_deep");
  assert.match(r.body.error.message, /32/, "the message names the limit");

  // the node still answers, the twin is as it was, and a later change is kept across a restart
  assert.equal(await fetch(`${node.httpUrl}/healthz`).then((x) => x.body?.cancel()), undefined);
  const before = await getJson(url);
  assert.equal(before.status, 200);
  assert.equal(before.body.version, 2);
  assert.deepEqual(before.body.desired, { speed: 5 });
  const ok = await getJson(`${url}/desired`, json("PATCH", '{"speed":6}'));
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal(ok.body.version, 3);
  await using again = await node.restart();
  const after = await getJson(`${again.httpUrl}/v1/twins/press-1`);
  assert.equal(after.body.version, 3);
  assert.deepEqual(after.body.desired, { speed: 6 });
  assert.ok(
    !again.logs.concat(node.logs).some((l) => l.includes("Maximum call stack")),
    "no stack overflow anywhere",
  );
});

Deno.test("deep JSON: a 4,000-deep reported over MQTT is rejected and counted; the twin is untouched", async () => {
  await using node = await startNode({});
  assert.equal((await publishQos1(node, "twins/m-1/reported", '{"a":1}')).code, 0);
  await waitFor(async () => (await getJson(`${node.httpUrl}/v1/twins/m-1`)).body.version === 1);

  const pub = await publishQos1(node, "twins/m-1/reported", nested(4_000));
  assert.equal(pub.code, 0, pub.stderr); // MQTT 3.1.1: acknowledged and dropped
  await waitFor(
    async () =>
      (await metricBy(node, "twinmill_mqtt_messages_rejected_total", "reason"))
        .payload_too_deep === 1,
    { message: "the deep message counted as payload_too_deep" },
  );
  const t = await getJson(`${node.httpUrl}/v1/twins/m-1`);
  assert.equal(t.body.version, 1);
  assert.deepEqual(t.body.reported, { a: 1 });
  assert.equal(await metric(node, "twinmill_actor_handler_failures_total"), 0);
  const d = await getJson(`${node.httpUrl}/v1/twins/m-1/diagnostics`);
  assert.equal(d.body.rejected.at(-1).reason, "payload_too_deep");
});
