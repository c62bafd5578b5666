import assert from "node:assert/strict";
import { ConnectionGuard, type HttpLimits } from "./conn_guard.ts";
import { silentLogger } from "../obs/log.ts";
import type { TcpConnection } from "./tcp_sockets.ts";

const limits: HttpLimits = { headerTimeoutMs: 10_000, idleTimeoutMs: 60_000, maxConnections: 3 };

/** A guard over a fake socket table, closer and clock. */
function fixture(l = limits) {
  let t = 1_000_000;
  const table = new Map<string, TcpConnection>();
  const shut: string[] = [];
  const guard = new ConnectionGuard({
    limits: l,
    logger: silentLogger,
    now: () => t,
    connections: () => Promise.resolve([...table.values()]),
    closer: {
      shutdown(inodes) {
        const list = [...inodes];
        shut.push(...list);
        for (const i of list) table.delete(i);
        return Promise.resolve(list.length);
      },
    },
  });
  const connect = (inode: string, port: number) =>
    table.set(inode, { inode, peer: `127.0.0.1|${port}` });
  /** A request on the connection from `port`; call the result when its response is sent. */
  const request = (port: number, status = 200) => {
    let sent!: () => void;
    const completed = new Promise<void>((r) => sent = r);
    const info = {
      remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port },
      completed,
    } as unknown as Deno.ServeHandlerInfo<Deno.NetAddr>;
    // a WebSocket upgrade's response says 101 (a Response cannot be built with it)
    guard.wrap(() => ({ status }) as Response)(
      new Request("http://x/"),
      info,
    );
    return async () => {
      sent();
      await completed;
      await Promise.resolve();
    };
  };
  return {
    guard,
    shut,
    connect,
    request,
    advance: (ms: number) => t += ms,
    sweep: () => guard.sweep(8080),
  };
}

Deno.test("guard: a connection without a complete request head goes at the header timeout", async () => {
  const f = fixture();
  f.connect("1", 5001);
  await f.sweep(); // first seen
  f.advance(9_999);
  assert.equal((await f.sweep()).header_timeout, 0);
  f.advance(1);
  assert.equal((await f.sweep()).header_timeout, 1);
  assert.deepEqual(f.shut, ["1"]);
});

Deno.test("guard: a request in progress holds its connection; idle time counts from its end", async () => {
  const f = fixture();
  f.connect("1", 5001);
  await f.sweep();
  const done = f.request(5001);
  f.advance(120_000); // a slow response: past both timeouts
  assert.deepEqual(await f.sweep(), {
    header_timeout: 0,
    idle_timeout: 0,
    too_many_connections: 0,
  });
  await done();
  f.advance(59_999);
  assert.equal((await f.sweep()).idle_timeout, 0);
  f.advance(1);
  assert.equal((await f.sweep()).idle_timeout, 1);
});

Deno.test("guard: past maxConnections, the oldest connections without a request go", async () => {
  const f = fixture();
  f.connect("busy", 5000);
  const done = f.request(5000);
  for (let i = 1; i <= 4; i++) {
    f.connect(String(i), 5000 + i);
    await f.sweep();
    f.advance(10);
  }
  // 5 open, 3 allowed: the two oldest idle ones, never the one serving a request
  assert.deepEqual(f.shut, ["1", "2"]);
  assert.equal(f.guard.open, 3);
  await done();
});

Deno.test("guard: a connection upgraded to a WebSocket is left to the WebSocket", async () => {
  const f = fixture();
  f.connect("1", 5001);
  await f.sweep();
  await (f.request(5001, 101))();
  f.advance(3_600_000);
  assert.deepEqual(await f.sweep(), {
    header_timeout: 0,
    idle_timeout: 0,
    too_many_connections: 0,
  });
});
