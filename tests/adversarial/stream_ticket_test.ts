/**
 * Adversarial: single-use WebSocket tickets. A ticket used to be spent by any request that
 * carried it, refused or not (a typo in `types=`, a plain GET without the upgrade, a twin out
 * of the caller's sites): the client then had no ticket for its real connection. A ticket is
 * spent only by the request that is accepted — the WebSocket upgrade — and only once.
 */
import assert from "node:assert/strict";
import { getJson, startNode } from "../harness/mod.ts";

const VIEWER_A = "adversarial-viewer-site-a-2";
const ADMIN = "adversarial-admin-key-0004";

const as = (key: string, method = "GET", body?: unknown): RequestInit => ({
  method,
  headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
  body: body === undefined ? undefined : JSON.stringify(body),
});

/** Opens a WebSocket; resolves with it once open, rejects if the server refuses it. */
function openWs(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  return new Promise((resolve, reject) => {
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error(`WebSocket refused: ${url}`));
  });
}

Deno.test("stream tickets: refused requests do not spend a ticket; the accepted one does, once", async () => {
  await using node = await startNode({ TWINMILL_API_KEYS: `${ADMIN}:admin,${VIEWER_A}:viewer:A` });
  for (const [id, site] of [["a-1", "A"], ["b-1", "B"]]) {
    const r = await getJson(
      `${node.httpUrl}/v1/twins/${id}`,
      as(ADMIN, "PUT", { attributes: { site } }),
    );
    assert.equal(r.status, 201);
  }
  const t = await getJson(`${node.httpUrl}/v1/stream/tickets`, as(VIEWER_A, "POST"));
  assert.equal(t.status, 201, JSON.stringify(t.body));
  const stream = (q: string) => `${node.httpUrl}/v1/stream?${q}&ticket=${t.body.ticket}`;

  // refused: another site's twin (403), a bad type (400), no WebSocket upgrade (400)
  const refusals: Array<[string, number, string]> = [
    ["twins=b-1", 403, "forbidden"],
    ["twins=a-1&types=telemetri", 400, "bad_request"],
    ["twins=a-1", 400, "websocket_required"],
  ];
  for (const [q, status, code] of refusals) {
    const r = await getJson(stream(q));
    assert.equal(r.status, status, `${q}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.code, code, q);
  }

  // the ticket still opens the stream, once
  const ws = await openWs(stream("twins=a-1").replace("http:", "ws:"));
  const closed = new Promise((r) => ws.onclose = r);
  ws.close();
  await closed;
  await assert.rejects(openWs(stream("twins=a-1").replace("http:", "ws:")), /refused/);
  const again = await getJson(stream("twins=a-1"));
  assert.equal(again.status, 401);
  assert.match(again.body.error.message, /ticket/);
});
