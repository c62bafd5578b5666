import assert from "node:assert/strict";
import { serveGateway } from "./server.ts";
import { silentLogger } from "../obs/log.ts";

const enc = new TextEncoder();
const limits = { headerTimeoutMs: 300, idleTimeoutMs: 600, maxConnections: 100 };

/** Resolves with the ms until the server closed `conn` (EOF), or null after `ms`. */
async function closedAfter(conn: Deno.Conn, ms: number): Promise<number | null> {
  const start = performance.now();
  const buf = new Uint8Array(4096);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const eof = (async () => {
    while ((await conn.read(buf).catch(() => null)) !== null) { /* drain answers */ }
    return performance.now() - start;
  })();
  const late = new Promise<null>((r) => timer = setTimeout(() => r(null), ms));
  try {
    return await Promise.race([eof, late]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("gateway server: a request head never finished is closed after the header timeout", async () => {
  await using server = await serveGateway(
    { hostname: "127.0.0.1", port: 0, limits, logger: silentLogger },
    () => new Response("ok"),
  );
  assert.ok(server.guarded);
  using partial = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  await partial.write(enc.encode("GET / HTTP/1.1\r\nHost: x\r\n"));
  using silent = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const [a, b] = await Promise.all([closedAfter(partial, 3000), closedAfter(silent, 3000)]);
  assert.ok(a !== null && a >= 250, `partial head closed after ${a} ms`);
  assert.ok(b !== null && b >= 250, `silent connection closed after ${b} ms`);
});

Deno.test("gateway server: keep-alive connections are closed after the idle timeout, not before", async () => {
  await using server = await serveGateway(
    { hostname: "127.0.0.1", port: 0, limits, logger: silentLogger },
    () => new Response("ok"),
  );
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  // requests 200 ms apart for longer than both timeouts: the connection stays
  for (let i = 0; i < 6; i++) {
    await conn.write(enc.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    const buf = new Uint8Array(4096);
    const n = await conn.read(buf);
    assert.match(new TextDecoder().decode(buf.subarray(0, n ?? 0)), /^HTTP\/1.1 200/);
    await new Promise((r) => setTimeout(r, 200));
  }
  const t = await closedAfter(conn, 3000);
  assert.ok(t !== null && t >= 350, `idle connection closed after ${t} ms`);
});

Deno.test("gateway server: a slow response holds its connection past both timeouts", async () => {
  await using server = await serveGateway(
    { hostname: "127.0.0.1", port: 0, limits, logger: silentLogger },
    async () => {
      await new Promise((r) => setTimeout(r, 1200));
      return new Response("late");
    },
  );
  const r = await fetch(`http://127.0.0.1:${server.port}/`);
  assert.equal(await r.text(), "late");
});

Deno.test("gateway server: a WebSocket outlives the idle timeout", async () => {
  await using server = await serveGateway(
    { hostname: "127.0.0.1", port: 0, limits, logger: silentLogger },
    (req) => {
      const { socket, response } = Deno.upgradeWebSocket(req);
      socket.onmessage = (e) => socket.send(`echo ${e.data}`);
      return response;
    },
  );
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`);
  const closed = new Promise((r) => ws.onclose = r);
  await new Promise((r) => ws.onopen = r);
  await new Promise((r) => setTimeout(r, 1500));
  const echo = new Promise((r) => ws.onmessage = (e) => r(e.data));
  ws.send("still here");
  assert.equal(await echo, "echo still here");
  ws.close();
  await closed;
});

Deno.test("gateway server: past maxConnections, connections without a request are closed", async () => {
  await using server = await serveGateway(
    {
      hostname: "127.0.0.1",
      port: 0,
      limits: { headerTimeoutMs: 60_000, idleTimeoutMs: 60_000, maxConnections: 5 },
      logger: silentLogger,
    },
    () => new Response("ok"),
  );
  const conns = await Promise.all(
    Array.from({ length: 12 }, () => Deno.connect({ hostname: "127.0.0.1", port: server.port })),
  );
  try {
    let closed = 0;
    await new Promise<void>((done) => {
      for (const c of conns) {
        closedAfter(c, 5000).then((t) => t !== null && ++closed === 7 && done());
      }
    });
    // closed at one tick: 7 of the 12, and the guard counts the 5 left
    assert.equal(server.connections, 5);
  } finally {
    for (const c of conns) c.close();
  }
});
