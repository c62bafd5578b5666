/**
 * Adversarial: a site-scoped key sees its own sites' twins and nothing of the others. A site-A
 * viewer used to read site-B twin ids in a config's status (`sample.pending`, and counts of
 * site-B twins) and in a campaign's device list, and a scoped stream of campaign events named
 * every device. Every route that returns twins or twin ids of several twins now applies the
 * caller's scope; the probes that already held (lists, single twins, alarms) stay in the suite.
 */
import assert from "node:assert/strict";
import { getJson, type NodeProcess, startNode, waitFor } from "../harness/mod.ts";

const ADMIN = "adversarial-admin-key-0003";
const VIEWER_A = "adversarial-viewer-site-a-1";
const A = ["a-1", "a-2"];
const B = ["b-1", "b-2", "b-3"];

// deno-lint-ignore no-explicit-any
type Any = any;

const as = (key: string, method = "GET", body?: unknown): RequestInit => ({
  method,
  headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
  body: body === undefined ? undefined : JSON.stringify(body),
});

async function node2Sites(): Promise<NodeProcess> {
  const node = await startNode({
    TWINMILL_API_KEYS: `${ADMIN}:admin,${VIEWER_A}:viewer:A`,
    TWINMILL_CAMPAIGN_TICK_MS: "100",
  });
  for (const [ids, site] of [[A, "A"], [B, "B"]] as const) {
    for (const id of ids) {
      const r = await getJson(
        `${node.httpUrl}/v1/twins/${id}`,
        as(ADMIN, "PUT", { attributes: { type: "press", site } }),
      );
      assert.equal(r.status, 201, JSON.stringify(r.body));
    }
  }
  return node;
}

const ids = (items: Array<{ id: string }>) => items.map((t) => t.id).sort();
const leaked = (text: string) => B.filter((id) => text.includes(id));

Deno.test("site scope: a config's status counts and names the caller's sites' twins only", async () => {
  await using node = await node2Sites();
  const put = await getJson(
    `${node.httpUrl}/v1/configs/press-defaults`,
    as(ADMIN, "PUT", { selector: { type: "press" }, desired: { rate: 5 } }),
  );
  assert.equal(put.status, 201, JSON.stringify(put.body));

  const all = await getJson(`${node.httpUrl}/v1/configs/press-defaults/status`, as(ADMIN));
  assert.equal(all.body.targeted, 5);
  assert.deepEqual(all.body.sample.pending.sort(), [...A, ...B]);

  const mine = await getJson(`${node.httpUrl}/v1/configs/press-defaults/status`, as(VIEWER_A));
  assert.equal(mine.status, 200, JSON.stringify(mine.body));
  assert.equal(mine.body.targeted, 2);
  assert.equal(mine.body.pending, 2);
  assert.deepEqual(mine.body.sample.pending.sort(), A);
  assert.deepEqual(leaked(JSON.stringify(mine.body)), []);
});

Deno.test("site scope: a campaign's devices and its stream events are the caller's sites' only", async () => {
  await using node = await node2Sites();
  const up = await getJson(`${node.httpUrl}/v1/firmware?name=press-fw&version=2.0.0`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/octet-stream" },
    body: new Uint8Array(1024),
  });
  assert.equal(up.status, 201, JSON.stringify(up.body));

  // the site-A viewer listens to campaign events, naming its twin a-1 (tickets: browsers)
  const t = await getJson(`${node.httpUrl}/v1/stream/tickets`, as(VIEWER_A, "POST"));
  assert.equal(t.status, 201, JSON.stringify(t.body));
  const ws = new WebSocket(
    `ws://127.0.0.1:${node.httpPort}/v1/stream?twins=a-1&types=campaign&ticket=${t.body.ticket}`,
  );
  const events: Any[] = [];
  ws.onmessage = (e) => events.push(JSON.parse(e.data));
  const closed = new Promise((r) => ws.onclose = r);
  await new Promise((r, j) => (ws.onopen = r, ws.onerror = j));
  try {
    const created = await getJson(
      `${node.httpUrl}/v1/campaigns`,
      as(ADMIN, "POST", { name: "all presses", firmware: up.body.id, selector: { type: "press" } }),
    );
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;
    const devices = (key: string) =>
      getJson(`${node.httpUrl}/v1/campaigns/${id}/devices?limit=1000`, as(key));
    await waitFor(async () => {
      const items: Any[] = (await devices(ADMIN)).body.items ?? [];
      return items.length === 5 && items.every((d) => d.state !== "pending");
    }, { message: "every device offered" });
    await waitFor(() => events.some((e) => e.data?.event === "device"), {
      message: "the viewer's stream got a device event",
    });

    const mine = await devices(VIEWER_A);
    assert.equal(mine.status, 200, JSON.stringify(mine.body));
    assert.deepEqual(ids(mine.body.items), A);
    assert.deepEqual(leaked(JSON.stringify(mine.body)), []);

    const deviceEvents = events.filter((e) => e.data?.event === "device");
    assert.deepEqual([...new Set(deviceEvents.map((e) => e.data.device))], ["a-1"]);
    assert.deepEqual(leaked(JSON.stringify(events)), []);
  } finally {
    ws.close();
    await closed;
  }
});

Deno.test("site scope: lists, twins and alarms hold (probes that already passed)", async () => {
  await using node = await node2Sites();
  const list = await getJson(`${node.httpUrl}/v1/twins?site=A`, as(VIEWER_A));
  assert.equal(list.status, 200);
  assert.deepEqual(ids(list.body.items), A);
  for (
    const url of [
      "/v1/twins",
      "/v1/twins?site=B",
      "/v1/twins/b-1",
      "/v1/twins/b-1/commands",
      "/v1/twins/b-1/diagnostics",
      "/v1/alarms",
      "/v1/alarms?site=B",
      "/v1/stream?twins=b-1",
    ]
  ) {
    const r = await getJson(`${node.httpUrl}${url}`, as(VIEWER_A));
    assert.equal(r.status, 403, `${url}: ${r.status} ${JSON.stringify(r.body)}`);
    assert.deepEqual(leaked(JSON.stringify(r.body).replace("b-1", "")), [], url);
  }
  const alarms = await getJson(`${node.httpUrl}/v1/alarms?site=A`, as(VIEWER_A));
  assert.equal(alarms.status, 200);
});
