import assert from "node:assert/strict";
import { compileGenerator, startGenerator } from "./factory_gen.ts";

/** A fake broker's replies: split and merged on purpose. */
const CONNACK = [0x20, 2, 0, 0];
const puback = (id: number) => [0x40, 2, id >> 8, id & 255];

/**
 * Serves one device connection: CONNACK in two writes; PUBACK 1 in two writes (split inside
 * the fixed header); PUBACK 2 held and sent with PUBACK 3, a PINGRESP and a PUBACK for no
 * message (99), all in one write.
 */
async function serve(conn: Deno.Conn): Promise<void> {
  const w = async (bytes: number[]) => void await conn.write(new Uint8Array(bytes));
  let buf = new Uint8Array(0);
  const chunk = new Uint8Array(1024);
  for (let n = await conn.read(chunk); n !== null; n = await conn.read(chunk)) {
    const next = new Uint8Array(buf.length + n);
    next.set(buf);
    next.set(chunk.subarray(0, n), buf.length);
    buf = next;
    while (buf.length >= 2 && buf.length >= 2 + buf[1]) { // remaining lengths here are < 128
      const type = buf[0] >> 4;
      const body = buf.subarray(2, 2 + buf[1]);
      buf = buf.slice(2 + body.length);
      if (type === 1) {
        await w(CONNACK.slice(0, 1));
        await new Promise((r) => setTimeout(r, 20));
        await w(CONNACK.slice(1));
      } else if (type === 3) {
        const topicLen = (body[0] << 8) | body[1];
        const id = (body[2 + topicLen] << 8) | body[3 + topicLen];
        if (id === 1) {
          await w(puback(1).slice(0, 1));
          await new Promise((r) => setTimeout(r, 20));
          await w(puback(1).slice(1));
        } else if (id === 3) await w([...puback(2), ...puback(3), 0xd0, 0, ...puback(99)]);
      } else if (type === 14) return conn.close();
    }
  }
}

Deno.test("factory generator: packets split inside a header or merged in one read are each counted once", async () => {
  const dir = await Deno.makeTempDir();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) served.push(serve(conn).catch(() => {}));
  })();
  try {
    const bin = await compileGenerator(dir);
    const o = {
      host: "127.0.0.1",
      port: listener.addr.port,
      first: 0,
      count: 2,
      total: 2,
      seconds: 3,
      connectRate: 100,
      drainMs: 2000,
    };
    const g = startGenerator(bin, o, "test generator");
    const ready = JSON.parse(await g.next());
    assert.deepEqual({ ...ready, connectSecs: 0 }, {
      ready: true,
      connected: 2,
      connectFailures: 0,
      connectSecs: 0,
    });
    const stdin = g.p.child.stdin.getWriter();
    await stdin.write(new TextEncoder().encode(`${Date.now() + 50}\n`));
    const r = JSON.parse(await g.next());
    await stdin.close();
    assert.equal((await g.p.status).code, 0);
    assert.deepEqual(
      [r.sent, r.acked, r.unexpected, r.dropped, r.sentPer, r.ackedPer, r.latency.count],
      [6, 6, 2, 0, [3, 3], [3, 3], 6],
    );
    assert.ok(r.latency.max < 2000, `latency max ${r.latency.max}`);
  } finally {
    listener.close();
    await accepting.catch(() => {});
    await Promise.all(served);
    await Deno.remove(dir, { recursive: true });
  }
});
