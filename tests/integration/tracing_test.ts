/**
 * Logs and tracing across a cluster, as an operator greps them: a request sent to one node
 * with a W3C `traceparent` and an `X-Request-Id` for a twin another node owns shows up in the
 * owner's log lines with the same trace id and request id; `TWINMILL_LOG` sets levels per
 * module.
 */
import assert from "node:assert/strict";
import { getJson, startNats, startNode } from "../harness/mod.ts";
import { sharedBy } from "../harness/cluster_wait.ts";
import { shardOf } from "../../src/sharding/shard.ts";

Deno.test("tracing: the trace id and request id reach the owning node's log lines", async () => {
  await using nats = await startNats({ jetstream: true });
  const env = { NATS_URL: nats.url, TWINMILL_SHARDS: "8" };
  await using n1 = await startNode({ ...env, TWINMILL_NODE_ID: "t1" });
  // the owner logs its routed requests (debug) and nothing else below info
  await using n2 = await startNode({
    ...env,
    TWINMILL_NODE_ID: "t2",
    TWINMILL_LOG: "info,cluster.router=debug",
  });
  await sharedBy(n1, 2);
  const view = (await getJson(`${n1.httpUrl}/v1/cluster`)).body;
  const twin = Array.from({ length: 32 }, (_, i) => `lathe-${i}`)
    .find((id) => view.shards[shardOf(id, 8)].owner === "t2")!;

  const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
  const res = await fetch(`${n1.httpUrl}/v1/twins/${twin}`, {
    method: "PUT",
    headers: {
      "content-type": "application/json",
      "traceparent": `00-${traceId}-00f067aa0ba902b7-01`,
      "x-request-id": "op-ticket-4711",
    },
    body: JSON.stringify({ attributes: { site: "B" } }),
  });
  assert.equal(res.status, 201, await res.text());
  assert.equal(res.headers.get("x-request-id"), "op-ticket-4711");

  const line = await n2.waitForLog((r) => r.traceId === traceId, 5000);
  assert.equal(line.mod, "twinmill.cluster.router");
  assert.equal(line.requestId, "op-ticket-4711");
  assert.equal(line.op, "put");
  assert.equal(line.twin, twin);
  // per-module levels: only the router logs at debug on t2; t1 logs no debug at all
  const debug = (logs: string[]) =>
    logs.map((l) => JSON.parse(l)).filter((r) => r.level === "debug").map((r) => r.mod);
  assert.deepEqual([...new Set(debug(n2.logs))], ["twinmill.cluster.router"]);
  assert.deepEqual(debug(n1.logs), []);
  // a request without a traceparent starts its own trace, still with its request id
  const plain = await fetch(`${n1.httpUrl}/v1/twins/${twin}/desired`, {
    method: "PATCH",
    headers: { "content-type": "application/json", "x-request-id": "op-ticket-4712" },
    body: JSON.stringify({ speed: 3 }),
  });
  assert.equal(plain.status, 200, await plain.text());
  const l2 = await n2.waitForLog((r) => r.requestId === "op-ticket-4712", 5000);
  assert.match(l2.traceId, /^[0-9a-f]{32}$/);
  assert.notEqual(l2.traceId, traceId, "a trace of its own");
});
