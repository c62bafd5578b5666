/**
 * Device management in cluster mode: a provisioning key created through one node provisions
 * devices through the other (over HTTP and MQTT), its quota holds across nodes, and a config
 * template stored through one node reaches twins owned by both, with the status counted
 * through either.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { getJson, startNats, startNode } from "../harness/mod.ts";
import { sharedBy } from "../harness/cluster_wait.ts";
import { shardOf } from "../../src/sharding/shard.ts";

const json = (
  method: string,
  body: unknown,
  headers: Record<string, string> = {},
): RequestInit => ({
  method,
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(body),
});

Deno.test("cluster management: provisioning quota across nodes, configs reach every owner", async () => {
  await using nats = await startNats({ jetstream: true });
  const env = { NATS_URL: nats.url, TWINMILL_SHARDS: "8" };
  await using n1 = await startNode({ ...env, TWINMILL_NODE_ID: "m1" });
  await using n2 = await startNode({ ...env, TWINMILL_NODE_ID: "m2" });
  await sharedBy(n1, 2);

  // a key with quota 3, created through m1
  const k = await getJson(
    `${n1.httpUrl}/v1/provisioning-keys`,
    json("POST", { name: "line-4", quota: 3, template: { type: "sensor", site: "C" } }),
  );
  assert.equal(k.status, 201, JSON.stringify(k.body));
  const key = k.body.key as string;
  const provisionHttp = (node: typeof n1, id: string) =>
    getJson(
      `${node.httpUrl}/v1/provision`,
      json("POST", { id }, { authorization: `Bearer ${key}` }),
    );
  assert.equal((await provisionHttp(n2, "s-1")).status, 201, "through m2");
  assert.equal((await provisionHttp(n1, "s-2")).status, 201, "through m1");
  // the third over MQTT on m2
  const c = await mqtt.connectAsync(n2.mqttUrl!, {
    clientId: "s-3-boot",
    username: "$provision",
    password: key,
    reconnectPeriod: 0,
  });
  const answer = new Promise<string>((r) => c.on("message", (_t, p) => r(p.toString())));
  await c.subscribeAsync("provision/s-3-boot/response", { qos: 1 });
  await c.publishAsync("provision/s-3-boot/request", JSON.stringify({ id: "s-3" }), { qos: 1 });
  const a = JSON.parse(await answer);
  await c.endAsync(true);
  assert.equal(a.status, "ok", JSON.stringify(a));
  // the quota is spent, whichever node is asked
  for (const node of [n1, n2]) {
    const r = await provisionHttp(node, `s-x-${node.httpPort}`);
    assert.equal(r.status, 403, JSON.stringify(r.body));
    assert.equal(r.body.error.code, "provisioning_quota_exhausted");
  }
  const used = await getJson(`${n2.httpUrl}/v1/provisioning-keys/${k.body.id}`);
  assert.equal(used.body.used, 3);

  // more twins of the site through both nodes; a config stored via m2 reaches all of them
  for (let i = 4; i <= 12; i++) {
    const node = i % 2 ? n1 : n2;
    const r = await getJson(
      `${node.httpUrl}/v1/twins/s-${i}`,
      json("PUT", { attributes: { type: "sensor", site: "C" } }),
    );
    assert.equal(r.status, 201);
  }
  const cfg = await getJson(
    `${n2.httpUrl}/v1/configs/c-sampling`,
    json("PUT", { selector: { site: "C" }, desired: { sampleEvery: 5 } }),
  );
  assert.equal(cfg.status, 201, JSON.stringify(cfg.body));
  assert.equal(cfg.body.applied.twins, 12);
  const view = (await getJson(`${n1.httpUrl}/v1/cluster`)).body;
  const owners = new Set(
    Array.from({ length: 12 }, (_, i) => view.shards[shardOf(`s-${i + 1}`, 8)].owner),
  );
  assert.deepEqual([...owners].sort(), ["m1", "m2"], "the twins live on both nodes");
  for (let i = 1; i <= 12; i++) {
    const t = await getJson(`${n1.httpUrl}/v1/twins/s-${i}`);
    assert.equal(t.body.desired.sampleEvery, 5, `s-${i}`);
  }
  const st = await getJson(`${n1.httpUrl}/v1/configs/c-sampling/status`);
  assert.equal(st.body.targeted, 12);
  assert.equal(st.body.pending, 12);
});
