/**
 * Cluster mode against a real 3-server NATS JetStream cluster and real node processes:
 * devices publish QoS 1 through different nodes while nodes crash, join and leave, and a
 * NATS server restarts; afterwards every twin's version equals its acknowledged messages,
 * read through every node's gateway.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { metric, type NodeProcess, startNatsCluster, startNode, waitFor } from "../harness/mod.ts";
import { assertExact, deviceTraffic, twinVersion as version } from "../harness/cluster_traffic.ts";

const DEVICES = 30;

/** Acknowledged messages per twin, over the whole test. */
const acked = new Map<string, number>();

/** Devices publishing QoS 1 through `nodes`, counted in {@linkcode acked}. */
const traffic = (nodes: NodeProcess[]) => deviceTraffic(nodes, acked, { devices: DEVICES });

async function settled(node: NodeProcess, nodes: number) {
  await waitFor(async () => {
    const c = await (await fetch(`${node.httpUrl}/v1/cluster`)).json();
    const owned = c.shards.filter((s: { owner: string | null }) => s.owner !== null).length;
    return c.nodes.length === nodes && owned === c.shards.length;
  }, { timeoutMs: 30_000, message: `cluster of ${nodes} settles` });
}

/** What `/v1/cluster` says of the shards (the part the watch reads). */
interface ClusterView {
  node: string;
  shards: Array<{ shard: number; owner: string | null; epoch: number | null; state: string }>;
}

/**
 * Watches single activation while the cluster runs, from what every live node serves, every
 * 200 ms:
 * - `/v1/cluster`: an epoch of a shard names one owner — every acquisition takes a new epoch
 *   (a lease is written with epoch 0 while its epoch is bumped: that one is left out);
 * - a node is active on no more shards than it holds leases: `twinmill_cluster_shards_owned`
 *   counts a shard from its consumer's start until its twins are persisted on handoff, or it
 *   is fenced — the span an activation lasts — and the leases are the node's own `/v1/cluster`,
 *   read between two scrapes of the gauge. A node still active on a shard whose lease expired
 *   or went to another node (two activations at once) shows more shards than leases. Only a
 *   surplus seen twice in a row counts, so a lease read from a lagging KV replica is not taken
 *   for one.
 */
function watchActivations(live: Set<NodeProcess>) {
  const owners = new Map<string, string>(); // "shard@epoch" -> owner
  const violations = new Set<string>(); // each distinct one once
  const surplus = new Map<NodeProcess, string>();
  let running = true;
  const sample = async (n: NodeProcess) => {
    const before = await metric(n, "twinmill_cluster_shards_owned");
    const view: ClusterView = await (await fetch(`${n.httpUrl}/v1/cluster`)).json();
    const after = await metric(n, "twinmill_cluster_shards_owned");
    for (const { shard, owner, epoch } of view.shards) {
      if (owner === null || !epoch) continue; // epoch 0: a lease still being taken
      const known = owners.get(`${shard}@${epoch}`);
      if (known === undefined) owners.set(`${shard}@${epoch}`, owner);
      else if (known !== owner) {
        violations.add(`shard ${shard}: epoch ${epoch} held by ${known} and by ${owner}`);
      }
    }
    const leases = view.shards.filter((s) => s.owner === view.node).length;
    const active = Math.min(before, after);
    if (active <= leases) return surplus.delete(n);
    const seen = `${view.node} active on ${active} shards holding ${leases} leases`;
    if (surplus.has(n)) violations.add(`${surplus.get(n)}, then ${seen}`);
    surplus.set(n, seen);
  };
  const loop = (async () => {
    while (running) {
      // a node that is stopping or gone answers no more: it holds nothing
      await Promise.all([...live].map((n) => sample(n).catch(() => surplus.delete(n))));
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  const stop = async () => {
    running = false;
    await loop;
    return { violations: [...violations], activations: owners.size };
  };
  return { stop, [Symbol.asyncDispose]: async () => void await stop() };
}

Deno.test("cluster: routing, crash, join, leave and a NATS restart lose nothing and apply nothing twice", async () => {
  await using nats = await startNatsCluster(3);
  const env = { NATS_URL: nats.urls, TWINMILL_SHARDS: "16" };
  await using n1 = await startNode({ ...env, TWINMILL_NODE_ID: "n1" });
  await using n2 = await startNode({ ...env, TWINMILL_NODE_ID: "n2" });
  await using n3 = await startNode({ ...env, TWINMILL_NODE_ID: "n3" });
  const live = new Set([n1, n2, n3]);
  await using watch = watchActivations(live);
  await settled(n1, 3);

  // 1. QoS 1 through different nodes; read through every node
  let t = traffic([n1, n2, n3]);
  await waitFor(() => t.total() >= 300, { timeoutMs: 30_000 });
  await t.stop();
  await assertExact([n1, n2, n3], acked);

  // events and downlink cross nodes: a WebSocket on n2 sees a twin fed through n1, and a
  // desired patch made through n3 reaches the device on n1 (retained, QoS 1)
  const ws = new WebSocket(
    `${n2.httpUrl.replace("http", "ws")}/v1/stream?twins=probe&types=telemetry`,
  );
  const events: Array<{ twin: string; data: { x: number } }> = [];
  ws.onmessage = (e) => events.push(JSON.parse(e.data));
  await new Promise((r) => (ws.onopen = r));
  const probe = await mqtt.connectAsync(n1.mqttUrl!, { clientId: "probe", reconnectPeriod: 0 });
  await waitFor(async () => {
    await probe.publishAsync("twins/probe/telemetry", JSON.stringify({ x: 1 }), { qos: 1 });
    return events.length > 0; // the subscription may take a moment to reach every server
  }, { message: "event of a twin fed on n1 reaches a WebSocket on n2" });
  assert.equal(events[0].twin, "probe");
  const desired = new Promise<string>((resolve) => {
    probe.on("message", (_t, payload) => resolve(String(payload)));
  });
  await probe.subscribeAsync("twins/probe/desired", { qos: 1 });
  const patch = await fetch(`${n3.httpUrl}/v1/twins/probe/desired`, {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: '{"speed":3}',
  });
  assert.equal(patch.status, 200);
  await patch.body?.cancel();
  assert.equal(await desired, '{"speed":3}');
  await probe.endAsync();
  ws.close();
  await new Promise((r) => (ws.onclose = r));

  // 2. kill -9 a node under traffic (devices on the survivors)
  t = traffic([n1, n2]);
  await waitFor(() => t.total() >= 200, { timeoutMs: 30_000 });
  const killedAt = Date.now();
  assert.equal(await n3.kill("SIGKILL"), 137);
  live.delete(n3);
  await waitFor(async () => {
    for (let i = 0; i < DEVICES; i++) if ((await version(n1, `dev-${i}`)) === null) return false;
    return true;
  }, { timeoutMs: 30_000, message: "every twin answers again after the crash" });
  const failoverMs = Date.now() - killedAt;
  console.log(`failover (kill -9 -> every twin answering): ${failoverMs} ms`);
  await t.stop();
  await assertExact([n1, n2], acked);

  // 3. a node joins under traffic
  t = traffic([n1, n2]);
  await using n4 = await startNode({ ...env, TWINMILL_NODE_ID: "n4" });
  live.add(n4);
  await settled(n4, 3);
  await waitFor(() => t.total() >= 200, { timeoutMs: 30_000 });
  await t.stop();
  await assertExact([n1, n2, n4], acked);
  // the operations view in metrics: shards owned, the rebalance, renewals, no lag left
  await waitFor(async () => (await metric(n1, "twinmill_cluster_consumer_lag_messages")) === 0);
  assert.ok((await metric(n1, "twinmill_cluster_shards_owned")) > 0);
  assert.ok((await metric(n4, "twinmill_cluster_shards_owned")) > 0);
  assert.ok((await metric(n1, "twinmill_cluster_handoffs_total")) > 0);
  assert.ok((await metric(n1, "twinmill_cluster_lease_renewals_total")) > 0);

  // 4. a node leaves with SIGTERM under traffic
  t = traffic([n1, n4]);
  await waitFor(() => t.total() >= 100, { timeoutMs: 30_000 });
  assert.equal(await n2.kill("SIGTERM"), 0);
  live.delete(n2);
  assert.ok(n2.logs.some((l) => l.includes('"handoff: released"')));
  await settled(n1, 2);
  await t.stop();
  await assertExact([n1, n4], acked);

  // 5. one NATS server restarts under traffic
  t = traffic([n1, n4]);
  await waitFor(() => t.total() >= 100, { timeoutMs: 30_000 });
  await nats.servers[0].stop();
  // back as soon as it serves; catching up its streams is the NATS cluster's business
  await nats.servers[0].start({ until: "serving" });
  await waitFor(() => t.total() >= 300, { timeoutMs: 60_000, message: "traffic continues" });
  await t.stop();
  // applied within seconds: a pull lost with its consumer leader is re-issued after two missed
  // idle heartbeats (2 × 2.5 s), not after the 30 s of a default pull
  await assertExact([n1, n4], acked, 20_000);

  const { violations, activations } = await watch.stop();
  assert.deepEqual(violations, [], "one activation per shard at a time");
  assert.ok(activations >= 16, `${activations} activations seen`);
});

Deno.test("cluster: a node paused (SIGSTOP) loses its shards to the others under traffic and, resumed, fences itself: no write after its lease, versions exact", async () => {
  acked.clear();
  await using nats = await startNatsCluster(3);
  const env = { NATS_URL: nats.urls, TWINMILL_SHARDS: "16" };
  await using n1 = await startNode({ ...env, TWINMILL_NODE_ID: "n1" });
  await using n2 = await startNode({ ...env, TWINMILL_NODE_ID: "n2" });
  await using n3 = await startNode({ ...env, TWINMILL_NODE_ID: "n3" });
  const live = new Set([n1, n2, n3]);
  await using watch = watchActivations(live);
  await settled(n1, 3);
  let t = traffic([n1, n2]); // the devices are on the nodes that keep running
  await waitFor(() => t.total() >= 150, { timeoutMs: 30_000 });

  // n3, started last, gets its shards by handoffs after the cluster settled: wait until it owns
  // some and none of them is in a handoff (a shard whose start failed under load is being
  // handed back, and one paused after its persist step only releases its lease on resume: no
  // fence to log)
  const owned = await waitFor(async () => {
    const v: ClusterView = await (await fetch(`${n3.httpUrl}/v1/cluster`)).json();
    const mine = v.shards.filter((s) => s.owner === "n3");
    return mine.length > 0 && mine.every((s) => s.state === "owned") ? mine : null;
  }, { timeoutMs: 30_000, message: "n3 owns its shards, none in a handoff" });
  const held = new Map(owned!.map((s) => [s.shard, s.epoch!]));
  live.delete(n3);
  Deno.kill(n3.pid, "SIGSTOP");
  try {
    // its connection stays open, so its probes time out (alive): its leases expire (3 s)
    await waitFor(async () => {
      const v: ClusterView = await (await fetch(`${n1.httpUrl}/v1/cluster`)).json();
      return [...held].every(([shard, epoch]) => {
        const s = v.shards.find((x) => x.shard === shard);
        return s?.owner !== null && s?.owner !== "n3" && s!.epoch! > epoch;
      });
    }, { timeoutMs: 30_000, message: "the others take the paused node's shards" });
    const sent = t.total();
    await waitFor(() => t.total() >= sent + 150, { timeoutMs: 30_000 }); // applied elsewhere
    // quiet before the resume: a snapshot the paused node wrote now would not be overwritten
    // by a later message, and a version read afterwards would show it
    await t.stop();
    await assertExact([n1, n2], acked);
  } finally {
    Deno.kill(n3.pid, "SIGCONT");
  }
  const resumedAt = n3.logs.length;
  // resumed: each shard it held is fenced at its old epoch, before anything else of it
  for (const [shard, epoch] of held) {
    await n3.waitForLog((r) =>
      r.msg === "shard lease lost: fenced, twins dropped unpersisted" && r.shard === shard &&
      r.epoch === epoch
    );
  }
  const after = n3.logs.slice(resumedAt).map((l) => JSON.parse(l));
  for (const [shard] of held) {
    const lost = after.findIndex((r) => r.msg?.startsWith("shard lease lost") && r.shard === shard);
    const wrote = after.findIndex((r) => r.msg?.startsWith("handoff:") && r.shard === shard);
    assert.ok(wrote === -1 || wrote > lost, `n3 handed off shard ${shard} before its fence`);
  }
  live.add(n3);
  await settled(n3, 3); // it rejoins and takes shards again, with new epochs
  await assertExact([n1, n2, n3], acked);
  t = traffic([n1, n2, n3]);
  await waitFor(() => t.total() >= 150, { timeoutMs: 30_000 });
  await t.stop();
  await assertExact([n1, n2, n3], acked);
  const { violations } = await watch.stop();
  assert.deepEqual(violations, [], "one activation per shard at a time");
  // how often the epoch fencing at the store caught a stale snapshot (a pause between a check
  // and its write is rare: usually none)
  const counts = await Promise.all(
    [n1, n2, n3].map(async (n) =>
      `${await metric(n, "twinmill_cluster_snapshot_writes_fenced_total")}/${await metric(
        n,
        "twinmill_cluster_stale_snapshots_overwritten_total",
      )}`
    ),
  );
  console.log(`snapshot writes fenced / stale snapshots overwritten, n1 n2 n3: ${counts}`);
});
