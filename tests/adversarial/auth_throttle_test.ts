/**
 * Adversarial: wrong MQTT passwords were not throttled (500 tries in 0.7 s, all answered).
 * Authentication failures are now counted per source address and per identity: past a burst,
 * a connect is refused unchecked with CONNACK 3 (server unavailable: back off) and counted in
 * `twinmill_mqtt_auth_throttled_total{by}`; the budget comes back with time.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { getJson, json, metric, metricBy, startNode, waitFor } from "../harness/mod.ts";

Deno.test("auth throttle: a password guesser is refused unchecked after a burst of failures", async () => {
  await using node = await startNode({ TWINMILL_MQTT_AUTH: "on" });
  assert.equal(
    (await getJson(`${node.httpUrl}/v1/twins/tX`, json("PUT", { attributes: {} }))).status,
    201,
  );
  const token: string =
    (await getJson(`${node.httpUrl}/v1/twins/tX/credentials`, json("POST"))).body.credentials
      .token;
  const attempt = (password: string) =>
    mqtt.connectAsync(node.mqttUrl!, {
      username: "tX",
      password,
      reconnectPeriod: 0,
      connectTimeout: 5000,
    }).then(
      async (c) => {
        await c.endAsync(true);
        return 0;
      },
      (err) => (err as { code?: number }).code ?? -1,
    );

  const codes: number[] = [];
  for (let i = 0; i < 100; i += 20) {
    codes.push(
      ...await Promise.all(Array.from({ length: 20 }, (_, j) => attempt(`guess-${i + j}`))),
    );
  }
  const checked = codes.filter((c) => c === 4).length;
  const throttled = codes.filter((c) => c === 3).length;
  assert.equal(checked + throttled, 100, JSON.stringify(codes));
  assert.ok(checked <= 25, `${checked} passwords checked of 100`);
  assert.ok(throttled >= 75, `${throttled} throttled`);
  const by = await metricBy(node, "twinmill_mqtt_auth_throttled_total", "by");
  assert.equal((by.source ?? 0) + (by.identity ?? 0), throttled, JSON.stringify(by));
  assert.equal(await metric(node, "twinmill_mqtt_auth_failures_total"), checked);

  // while throttled, even the right password is refused unchecked
  assert.equal(await attempt(token), 3);
  // the budget comes back with time: the device gets in again
  await waitFor(async () => await attempt(token) === 0, {
    timeoutMs: 15_000,
    message: "the right token is accepted once the failures have aged",
  });
});
