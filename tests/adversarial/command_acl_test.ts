/**
 * Adversarial: a device must never receive another device's commands. With device auth on,
 * device tA subscribing to `twins/tB/commands/+` or `twins/tB/#` used to get SUBACK 0x80 and
 * then every open command of tB (arguments included), and tB's commands showed `delivered`:
 * command delivery went straight to "listening" clients, around the ACL. Subscription and
 * delivery now both ask one ACL function.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { getJson, json, startNode, waitFor } from "../harness/mod.ts";

Deno.test("command ACL: a device subscribed to another twin's commands receives none of them", async () => {
  await using node = await startNode({ TWINMILL_MQTT_AUTH: "on" });
  const tokens: Record<string, string> = {};
  for (const id of ["tA", "tB"]) {
    const put = await getJson(`${node.httpUrl}/v1/twins/${id}`, json("PUT", { attributes: {} }));
    assert.equal(put.status, 201, JSON.stringify(put.body));
    const c = await getJson(`${node.httpUrl}/v1/twins/${id}/credentials`, json("POST"));
    assert.equal(c.status, 201, JSON.stringify(c.body));
    tokens[id] = c.body.credentials.token;
  }
  const queued = await getJson(
    `${node.httpUrl}/v1/twins/tB/commands`,
    json("POST", { name: "unlock", args: { pin: "s3cr3t-pin" }, mode: "async" }),
  );
  assert.equal(queued.status, 202, JSON.stringify(queued.body));
  const cmdId: string = queued.body.id;

  const thief = await mqtt.connectAsync(node.mqttUrl!, {
    clientId: "tA",
    username: "tA",
    password: tokens.tA,
    reconnectPeriod: 0,
  });
  const stolen: string[] = [];
  thief.on("message", (topic, payload) => stolen.push(`${topic} ${payload}`));
  try {
    const suback = await thief.subscribeAsync(
      ["twins/tB/commands/+", "twins/tB/#", "twins/tB/commands/#"],
      { qos: 1 },
    ).then(
      () => assert.fail("the subscriptions must be refused"),
      (err) => err.packet as { granted: number[] },
    );
    assert.deepEqual(suback.granted, [128, 128, 128]);
    // a round trip on the same connection: anything sent because of those subscriptions
    // would have arrived before this PINGRESP-like answer (own twin's desired, retained)
    await thief.subscribeAsync("twins/tA/desired", { qos: 1 });
    const c = await getJson(`${node.httpUrl}/v1/twins/tB/commands/${cmdId}`);
    assert.equal(c.body.status, "pending", JSON.stringify(c.body));
    assert.deepEqual(stolen, []);

    // tB itself still gets it
    const owner = await mqtt.connectAsync(node.mqttUrl!, {
      clientId: "tB",
      username: "tB",
      password: tokens.tB,
      reconnectPeriod: 0,
    });
    try {
      const got: string[] = [];
      owner.on("message", (topic, payload) => got.push(`${topic} ${payload}`));
      await owner.subscribeAsync("twins/tB/commands/+", { qos: 1 });
      await waitFor(() => got.length === 1, { message: "tB receives its command" });
      assert.ok(got[0].includes("s3cr3t-pin"));
      await waitFor(async () =>
        (await getJson(`${node.httpUrl}/v1/twins/tB/commands/${cmdId}`)).body.status ===
          "delivered"
      );
      // a second command while both listen: only tB
      const q2 = await getJson(
        `${node.httpUrl}/v1/twins/tB/commands`,
        json("POST", { name: "unlock", args: { pin: "2nd" }, mode: "async" }),
      );
      assert.equal(q2.status, 202);
      await waitFor(() => got.length === 2, { message: "tB receives its second command" });
      await thief.subscribeAsync("twins/tA/desired", { qos: 1 });
      assert.deepEqual(stolen, []);
    } finally {
      await owner.endAsync(true);
    }
  } finally {
    await thief.endAsync(true);
  }
});
