/**
 * Stopping a node as the README says: its `ready` line names the pid to signal, and SIGTERM
 * (as Ctrl-C's SIGINT) stops it gracefully: every accepted message is applied and persisted on
 * the way out, so the next start has nothing to replay.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { startNode, waitFor } from "../harness/mod.ts";

Deno.test("stop: the ready line names the node's pid; SIGTERM persists everything on the way out", async () => {
  await using node = await startNode({});
  const ready = await node.waitForLog((r) => r.msg === "ready");
  assert.equal(ready.pid, node.pid, "the ready line names the node's own process");

  const c = await mqtt.connectAsync(node.mqttUrl!, { reconnectPeriod: 0 });
  const acks: Promise<unknown>[] = [];
  for (let i = 1; i <= 200; i++) {
    for (const id of ["stop-1", "stop-2"]) {
      acks.push(c.publishAsync(`twins/${id}/telemetry`, JSON.stringify({ seq: i }), { qos: 1 }));
    }
  }
  await Promise.all(acks);
  await c.endAsync();

  // right after the last PUBACK, as an operator would: SIGTERM to the pid of the ready line
  assert.equal(await node.kill("SIGTERM"), 0, "a graceful stop exits 0");
  assert.ok(node.logs.some((l) => l.includes('"msg":"stopped"')), "it says it stopped");

  await using again = await node.restart();
  for (const id of ["stop-1", "stop-2"]) {
    const t = await waitFor(async () => {
      const r = await fetch(`${again.httpUrl}/v1/twins/${id}`);
      return r.status === 200 ? await r.json() : (await r.body?.cancel(), null);
    }, { message: `twin ${id} after the restart` });
    assert.equal(t.version, 200, `exact version of ${id}`);
    assert.equal(t.reported.seq, 200);
  }
  assert.ok(
    !again.logs.some((l) => l.includes("replayed unretired inbound messages")),
    "everything was persisted on the way out: nothing to replay",
  );
});
