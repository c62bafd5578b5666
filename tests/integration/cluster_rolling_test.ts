/**
 * Rolling restart under traffic against a real 3-server NATS JetStream cluster and 3 node
 * processes: every node in turn is stopped with SIGTERM and started again (same id, same ports),
 * then every NATS server in turn. Devices publish QoS 1 all along and move to another node when
 * theirs goes away. Afterwards every twin's version equals the messages its device had
 * acknowledged, read through every node; devices saw nothing but reconnects; and `/readyz` of
 * every node, polled all along beside a GET of a twin, never said 200 while the node could not
 * answer that GET — other than with the 503 `shard_unavailable` ("retry shortly") of a shard
 * between two owners, which every node answers then — and came back to 200.
 */
import assert from "node:assert/strict";
import {
  freePorts,
  type NodeProcess,
  startNatsCluster,
  startNode,
  waitFor,
} from "../harness/mod.ts";
import { type Devices, startDevices, waitReady, watchReadiness } from "../harness/rolling.ts";
import { diagnoseStall, rollNats, rollNodes, version, versionMismatches } from "../harness/roll.ts";

const DEVICES = 20;
const RATE = 5; // messages per second per device

Deno.test("cluster: rolling restart of every node, then of every NATS server, under traffic", async () => {
  await using nats = await startNatsCluster(3);
  const ports = await freePorts(6);
  const envOf = (i: number) => ({
    NATS_URL: nats.urls,
    TWINMILL_SHARDS: "16",
    TWINMILL_NODE_ID: `n${i + 1}`,
    TWINMILL_HTTP_PORT: String(ports[2 * i]),
    TWINMILL_MQTT_PORT: String(ports[2 * i + 1]),
  });
  const nodes: NodeProcess[] = [];
  let devices: Devices | undefined;
  let watch: ReturnType<typeof watchReadiness> | undefined;
  try {
    for (let i = 0; i < 3; i++) nodes.push(await startNode(envOf(i)));
    await Promise.all(nodes.map((n) => waitReady(n.httpUrl)));
    const urls = nodes.map((n) => n.httpUrl); // the same after each restart (fixed ports)

    devices = await startDevices(
      nodes.map((n) => ({ host: "127.0.0.1", port: n.mqttPort! })),
      { count: DEVICES, rate: RATE },
    );
    const ids = [...devices.acked.keys()];
    await waitFor(async () => {
      for (const id of ids) if ((await version(urls[0], id)) === null) return false;
      return true;
    }, { timeoutMs: 30_000, message: "every twin exists" });
    const w = watch = watchReadiness(
      urls.map((httpUrl, i) => ({ name: `n${i + 1}`, httpUrl })),
      ids,
    );
    const onStep = (step: string) => (w.phase = step);

    // 1. every node in turn: SIGTERM (a graceful leave: every shard handed off, exit 0), start
    // it again, every node ready, traffic goes on
    const stopped = await rollNodes(nodes, { devices, onStep });
    for (const [i, s] of stopped.entries()) {
      assert.equal(s.code, 0, `n${i + 1} exits 0 on SIGTERM`);
      assert.ok(s.logs.some((l) => l.includes('"handoff: released"')), `n${i + 1} handed off`);
    }

    // 2. every NATS server in turn: stop, start, wait until the JetStream cluster is whole (one
    // meta leader, every stream current) and every node ready, traffic goes on
    await rollNats(nats, nodes, { devices, onStep });
    onStep("end");
    await devices.stop();

    // 3. versions exact through every node: nothing acknowledged lost, nothing applied twice
    const deadline = Date.now() + 30_000;
    const wrong = (await Promise.all(urls.map((u) =>
      versionMismatches(u, devices!.acked, deadline)
    )))
      .flat();
    if (wrong.length > 0) console.log(await diagnoseStall(nats, nodes));
    assert.deepEqual(wrong, [], "every twin's version equals its acknowledged messages");
    assert.deepEqual(devices.errors, [], "devices see nothing but reconnects");

    // 4. readiness was honest on every node and came back to 200
    await Promise.all(urls.map((u) => waitReady(u)));
    const logs = await watch.stop();
    for (const [name, log] of logs) {
      console.log(
        `${name}: /readyz by phase ${JSON.stringify(log.readyz)}; GETs refused while not ready ` +
          `${log.refusedWhileNotReady}; 503 shard_unavailable while ready ${log.handoffGaps}, ` +
          `of which on a shard its /v1/cluster named it the holder of ` +
          `${log.gapsOnHeldShards.length} ${JSON.stringify(log.gapsOnHeldShards)}`,
      );
      assert.deepEqual(log.dishonest, [], `${name}: /readyz 200 while a GET failed`);
      const own = log.readyz[`node ${name}`];
      assert.ok((own[503] ?? 0) + (own.down ?? 0) > 0, `${name} was not ready while restarting`);
    }
    console.log(
      `rolling: ${devices.total()} messages acknowledged, ${devices.reconnects()} reconnects`,
    );
  } finally {
    await watch?.stop();
    await devices?.stop();
    for (const n of nodes) await n[Symbol.asyncDispose]();
  }
});
