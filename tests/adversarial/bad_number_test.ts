/**
 * Adversarial: numbers JSON can write but JavaScript cannot hold. `1e400` parses to Infinity,
 * which used to be stored and sent to the device as `null` — a merge patch's "delete". The
 * JSON intake refuses non-finite numbers: HTTP 400 `bad_number`, MQTT rejected as
 * `bad_number`; nothing is stored.
 */
import assert from "node:assert/strict";
import { getJson, metricBy, publishQos1, startNode, waitFor } from "../harness/mod.ts";

const json = (method: string, body: string) => ({
  method,
  headers: { "content-type": "application/json" },
  body,
});

Deno.test('bad number: PATCH desired {"n":1e400} is 400 bad_number and changes nothing', async () => {
  await using node = await startNode({});
  const url = `${node.httpUrl}/v1/twins/press-2`;
  assert.equal((await getJson(url, json("PUT", '{"attributes":{}}'))).status, 201);
  assert.equal((await getJson(`${url}/desired`, json("PATCH", '{"n":7}'))).status, 200);
  const r = await getJson(`${url}/desired`, json("PATCH", '{"n":1e400}'));
  assert.equal(r.status, 400, JSON.stringify(r.body).slice(0, 300));
  assert.equal(r.body.error.code, "bad_number");
  const t = await getJson(url);
  assert.equal(t.body.version, 2);
  assert.deepEqual(t.body.desired, { n: 7 });
});

Deno.test('bad number: reported {"n":1e400} over MQTT is rejected as bad_number, never stored as null', async () => {
  await using node = await startNode({});
  assert.equal((await publishQos1(node, "twins/m-2/reported", '{"n":7}')).code, 0);
  assert.equal((await publishQos1(node, "twins/m-2/reported", '{"n":-1e400}')).code, 0);
  assert.equal((await publishQos1(node, "twins/m-2/telemetry", '{"t":1e400}')).code, 0);
  await waitFor(
    async () =>
      (await metricBy(node, "twinmill_mqtt_messages_rejected_total", "reason")).bad_number === 2,
    { message: "both counted as bad_number" },
  );
  const t = await getJson(`${node.httpUrl}/v1/twins/m-2`);
  assert.equal(t.body.version, 1);
  assert.deepEqual(t.body.reported, { n: 7 });
});
