/**
 * Adversarial: HTTP connections that hold the node's file descriptors. A connection that sent
 * half a request head (or nothing) used to stay open forever — 200 of them were still open
 * after 70 s, and a process out of descriptors stops accepting. Now a connection has
 * `TWINMILL_HTTP_HEADER_TIMEOUT` to complete a request head and may sit
 * `TWINMILL_HTTP_IDLE_TIMEOUT` without a request; past `TWINMILL_HTTP_MAX_CONNECTIONS`, those
 * that never completed a request are closed. Each closure is counted.
 */
import assert from "node:assert/strict";
import { getJson, metricBy, startNode, waitFor, within } from "../harness/mod.ts";

const KEY = "adversarial-admin-key-0001";
const enc = new TextEncoder();

/** Resolves when the node closes `conn` (EOF or reset); answers are read and dropped. */
async function untilClosed(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(4096);
  while ((await conn.read(buf).catch(() => null)) !== null) { /* drain */ }
}

/** Connections to the node's HTTP port; `head` is sent on each (may be empty). */
async function open(port: number, n: number, head: string): Promise<Deno.TcpConn[]> {
  const conns = await Promise.all(
    Array.from({ length: n }, () => Deno.connect({ hostname: "127.0.0.1", port })),
  );
  if (head) await Promise.all(conns.map((c) => c.write(enc.encode(head))));
  return conns;
}

Deno.test("http timeouts: unfinished request heads and silent connections are closed after the header timeout", async () => {
  await using node = await startNode({
    TWINMILL_API_KEYS: `${KEY}:admin`,
    TWINMILL_HTTP_HEADER_TIMEOUT: "1",
    TWINMILL_HTTP_IDLE_TIMEOUT: "60",
  });
  const started = performance.now();
  const partial = await open(node.httpPort, 100, "GET /v1/twins HTTP/1.1\r\nHost: x\r\nX-A: ");
  const silent = await open(node.httpPort, 50, "");
  try {
    // a well-behaved client is served meanwhile
    const ok = await getJson(`${node.httpUrl}/v1/twins`, {
      headers: { authorization: `Bearer ${KEY}` },
    });
    assert.equal(ok.status, 200);
    await within(
      Promise.all([...partial, ...silent].map(untilClosed)),
      6_000,
      "connections without a complete request head still open after 6 s",
    );
    const took = performance.now() - started;
    assert.ok(took >= 900 && took < 6_000, `all 150 closed after ${Math.round(took)} ms`);
    await waitFor(
      async () =>
        (await metricBy(node, "twinmill_http_connections_closed_total", "reason"))
          .header_timeout >= 150,
      { message: "150 closures counted as header_timeout" },
    );
    assert.equal((await fetch(`${node.httpUrl}/healthz`)).status, 200);
  } finally {
    for (const c of [...partial, ...silent]) c.close();
  }
});

Deno.test("http timeouts: an idle keep-alive connection is closed after the idle timeout; one in use stays", async () => {
  await using node = await startNode({
    TWINMILL_API_KEYS: `${KEY}:admin`,
    TWINMILL_HTTP_HEADER_TIMEOUT: "1",
    TWINMILL_HTTP_IDLE_TIMEOUT: "2",
  });
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: node.httpPort });
  const get = `GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n`;
  const buf = new Uint8Array(4096);
  // a request every 500 ms for 3 s: longer than both timeouts, never idle for long
  for (const until = performance.now() + 3_000; performance.now() < until;) {
    await conn.write(enc.encode(get));
    const n = await conn.read(buf);
    assert.match(new TextDecoder().decode(buf.subarray(0, n ?? 0)), /^HTTP\/1\.1 200/);
    await new Promise((r) => setTimeout(r, 500));
  }
  const idleSince = performance.now();
  await within(untilClosed(conn), 6_000, "idle keep-alive connection still open after 6 s");
  const idle = performance.now() - idleSince;
  assert.ok(idle >= 1_400 && idle < 5_000, `closed after ${Math.round(idle)} ms idle`);
  assert.ok(
    (await metricBy(node, "twinmill_http_connections_closed_total", "reason")).idle_timeout >= 1,
  );
});

Deno.test("http timeouts: past TWINMILL_HTTP_MAX_CONNECTIONS, connections without a request are closed; requests go on", async () => {
  await using node = await startNode({
    TWINMILL_API_KEYS: `${KEY}:admin`,
    TWINMILL_HTTP_HEADER_TIMEOUT: "60",
    TWINMILL_HTTP_MAX_CONNECTIONS: "20",
  });
  const conns = await open(node.httpPort, 60, "");
  const closed = new Set<number>();
  conns.forEach((c, i) => untilClosed(c).then(() => closed.add(i)));
  try {
    await waitFor(() => closed.size >= 40, {
      timeoutMs: 5_000,
      message: "40 of the 60 idle connections closed",
    });
    const ok = await getJson(`${node.httpUrl}/v1/twins`, {
      headers: { authorization: `Bearer ${KEY}` },
    });
    assert.equal(ok.status, 200);
    const closures = await metricBy(node, "twinmill_http_connections_closed_total", "reason");
    assert.ok(closures.too_many_connections >= 40, JSON.stringify(closures));
  } finally {
    for (const c of conns) c.close();
  }
});
