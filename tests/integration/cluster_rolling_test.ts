/**
 * Rolling restart under traffic against a real 3-server NATS JetStream cluster and 3 node
 * processes: every node in turn is stopped with SIGTERM and started again (same id, same ports),
 * then every NATS server in turn. Devices publish QoS 1 all along and move to another node when
 * theirs goes away. Afterwards every twin's version equals the messages its device had
 * acknowledged, read through every node; devices saw nothing but reconnects; and `/readyz` of
 * every node, polled all along beside a GET of a twin, never said 200 while the node could not
 * answer that GET, and came back to 200.
 */
import assert from "node:assert/strict";
import {
  freePorts,
  type NodeProcess,
  startNatsCluster,
  startNode,
  waitFor,
} from "../harness/mod.ts";
import { startDevices, waitJetStreamWhole, waitReady, watchReadiness } from "../harness/rolling.ts";

const DEVICES = 20;
const RATE = 5; // messages per second per device

async function version(httpUrl: string, id: string): Promise<number | null> {
  const r = await fetch(`${httpUrl}/v1/twins/${id}`);
  if (r.status !== 200) {
    await r.body?.cancel();
    return null;
  }
  return (await r.json()).version;
}

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
  /** What the inbound stream and its consumers hold, and the nodes' warnings (on a failure). */
  const diagnose = async () => {
    const out: string[] = [];
    for (const s of nats.servers) {
      const jsz = await (await fetch(
        `${s.monitorUrl}/jsz?accounts=true&streams=true&consumers=true`,
      )).json().catch(() => ({}));
      for (const a of jsz.account_details ?? []) {
        for (const st of a.stream_detail ?? []) {
          if (st.name !== "TM_IN" || st.cluster?.leader !== s.name) continue;
          out.push(`TM_IN on ${s.name}: ${JSON.stringify(st.state)}`);
          for (const c of st.consumer_detail ?? []) {
            out.push(
              `  ${c.name}: pending ${c.num_pending} ack_pending ${c.num_ack_pending} ` +
                `redelivered ${c.num_redelivered} waiting ${c.num_waiting} ` +
                `leader ${c.cluster?.leader}`,
            );
          }
        }
      }
    }
    for (const [i, n] of nodes.entries()) {
      const bad = n.logs.filter((l) => /"level":"(warn|error)"/.test(l)).slice(-15);
      out.push(`n${i + 1} warnings:`, ...bad);
    }
    return out.join("\n");
  };
  try {
    for (let i = 0; i < 3; i++) nodes.push(await startNode(envOf(i)));
    const urls = nodes.map((n) => n.httpUrl);
    await Promise.all(urls.map((u) => waitReady(u)));

    const devices = await startDevices(
      nodes.map((n) => ({ host: "127.0.0.1", port: n.mqttPort! })),
      { count: DEVICES, rate: RATE },
    );
    const ids = [...devices.acked.keys()];
    await waitFor(async () => {
      for (const id of ids) if ((await version(urls[0], id)) === null) return false;
      return true;
    }, { timeoutMs: 30_000, message: "every twin exists" });
    const watch = watchReadiness(
      urls.map((httpUrl, i) => ({ name: `n${i + 1}`, httpUrl })),
      ids,
    );

    // 1. every node in turn: SIGTERM (a graceful leave), wait for its exit, start it again
    for (let i = 0; i < nodes.length; i++) {
      const before = devices.total();
      watch.phase = `node n${i + 1}`;
      assert.equal(await nodes[i].kill("SIGTERM"), 0, `n${i + 1} exits 0 on SIGTERM`);
      assert.ok(nodes[i].logs.some((l) => l.includes('"handoff: released"')));
      nodes[i] = await nodes[i].restart();
      await waitReady(urls[i]);
      await waitFor(() => devices.total() >= before + DEVICES, {
        timeoutMs: 30_000,
        message: `traffic continues after n${i + 1} restarted`,
      });
    }

    // 2. every NATS server in turn: stop, start, wait until it has caught up and the cluster
    // names one meta leader, and every node is ready again
    for (const s of nats.servers) {
      const before = devices.total();
      watch.phase = `NATS ${s.name}`;
      await s.stop();
      await s.start({ until: "serving" });
      await waitJetStreamWhole(nats);
      await Promise.all(urls.map((u) => waitReady(u)));
      await waitFor(() => devices.total() >= before + DEVICES, {
        timeoutMs: 30_000,
        message: `traffic continues after NATS ${s.name} restarted`,
      });
    }
    watch.phase = "end";
    await devices.stop();

    // 3. versions exact through every node: nothing acknowledged lost, nothing applied twice
    const deadline = Date.now() + 30_000;
    for (const url of urls) {
      for (const [id, n] of devices.acked) {
        let last: number | null = null;
        await waitFor(async () => (last = await version(url, id)) !== null && last >= n, {
          timeoutMs: Math.max(1, deadline - Date.now()),
          message: `${id} reaches ${n} via ${url}`,
        }).catch(async (err) => {
          throw new Error(`${err.message}; last version seen ${last}\n${await diagnose()}`);
        });
        assert.equal(last, n, `${id} via ${url}: version ${last}, acknowledged ${n}`);
      }
    }
    assert.deepEqual(devices.errors, [], "devices see nothing but reconnects");

    // 4. readiness was honest on every node and came back to 200
    await Promise.all(urls.map((u) => waitReady(u)));
    const logs = await watch.stop();
    for (const [name, log] of logs) {
      console.log(
        `${name}: /readyz by phase ${JSON.stringify(log.readyz)}; GETs refused while not ready ` +
          `${log.refusedWhileNotReady}, 503 shard_unavailable while ready (shard moving ` +
          `between other nodes) ${log.handoffGaps}`,
      );
      assert.deepEqual(log.dishonest, [], `${name}: /readyz 200 while a GET failed`);
      const own = log.readyz[`node ${name}`];
      assert.ok((own[503] ?? 0) + (own.down ?? 0) > 0, `${name} was not ready while restarting`);
    }
    console.log(
      `rolling: ${devices.total()} messages acknowledged, ${devices.reconnects()} reconnects`,
    );
  } finally {
    for (const n of nodes) await n[Symbol.asyncDispose]();
  }
});
