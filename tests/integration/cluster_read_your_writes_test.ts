/**
 * Read your own writes across a cluster: a change that one node acknowledged (attributes,
 * desired) is in the `GET /v1/twins?…` list of every node right after the acknowledgement,
 * whichever node owns the twin — no polling, no waiting.
 */
import assert from "node:assert/strict";
import { getJson, json, type NodeProcess, startNats, startNode } from "../harness/mod.ts";
import { sharedBy } from "../harness/cluster_wait.ts";

/** Every twin of the list `query` on `node`, following the cursor. */
async function listAll(node: NodeProcess, query: string) {
  // deno-lint-ignore no-explicit-any
  const items: any[] = [];
  let cursor = "";
  for (;;) {
    const r = await getJson(
      `${node.httpUrl}/v1/twins?${query}&limit=100${cursor ? `&cursor=${cursor}` : ""}`,
    );
    assert.equal(r.status, 200, JSON.stringify(r.body));
    items.push(...r.body.items);
    if (!r.body.next) return items;
    cursor = encodeURIComponent(r.body.next);
  }
}

Deno.test("cluster: an acknowledged change is in every node's list at once", async () => {
  await using nats = await startNats({ jetstream: true });
  const env = { NATS_URL: nats.url, TWINMILL_SHARDS: "8" };
  await using n1 = await startNode({ ...env, TWINMILL_NODE_ID: "r1" });
  await using n2 = await startNode({ ...env, TWINMILL_NODE_ID: "r2" });
  await using n3 = await startNode({ ...env, TWINMILL_NODE_ID: "r3" });
  const nodes = [n1, n2, n3];
  await sharedBy(n1, 3);

  // 24 twins over 8 shards: each node writes some it owns and some it does not
  for (let i = 0; i < 24; i++) {
    const writer = nodes[i % 3];
    const id = `ryw-${i}`;
    const put = await getJson(
      `${writer.httpUrl}/v1/twins/${id}`,
      json("PUT", { attributes: { site: "ryw", line: `L${i}` } }),
    );
    assert.equal(put.status, 201, JSON.stringify(put.body));
    for (const reader of nodes) {
      const items = await listAll(reader, `site=ryw&line=L${i}`);
      assert.deepEqual(items.map((t) => t.id), [id], `${id} listed by every node after its PUT`);
    }
    const patch = await getJson(
      `${nodes[(i + 1) % 3].httpUrl}/v1/twins/${id}/desired`,
      json("PATCH", { speed: i }),
    );
    assert.equal(patch.status, 200, JSON.stringify(patch.body));
    for (const reader of nodes) {
      const [t] = await listAll(reader, `site=ryw&line=L${i}`);
      assert.deepEqual(t.desired, { speed: i }, `${id}'s desired listed by every node at once`);
      assert.equal(t.version, patch.body.version);
    }
  }
  for (const reader of nodes) {
    assert.equal((await listAll(reader, "site=ryw")).length, 24);
  }
});
