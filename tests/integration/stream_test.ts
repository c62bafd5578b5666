/**
 * `GET /v1/stream` end to end against a real node: filtering by twin and event type, event
 * order and versions, query validation, and a slow consumer that is dropped without ever
 * holding back ingest.
 */
import assert from "node:assert/strict";
import {
  connectDevice,
  getJson,
  metric,
  type NodeProcess,
  startNode,
  waitFor,
} from "../harness/mod.ts";

/** A twin event as the stream sends it. */
interface TwinEvent {
  type: string;
  twin: string;
  version: number;
  ts: number;
  // deno-lint-ignore no-explicit-any
  data: any;
}

async function twinVersion(node: NodeProcess, id: string): Promise<number> {
  const { status, body } = await getJson(`${node.httpUrl}/v1/twins/${id}`);
  return status === 200 ? body.version : 0;
}

/** A WebSocket stream client that records every event; disposing closes it. */
interface Stream extends AsyncDisposable {
  events: TwinEvent[];
}

/**
 * Opens `/v1/stream?<query>` and resolves once the node counts it as a client (its
 * subscriptions are in place then), i.e. once `twinmill_ws_clients` reaches `clients`.
 */
async function openStream(node: NodeProcess, query: string, clients = 1): Promise<Stream> {
  const ws = new WebSocket(`ws://127.0.0.1:${node.httpPort}/v1/stream?${query}`);
  const events: TwinEvent[] = [];
  ws.onmessage = (e) => events.push(JSON.parse(e.data));
  const closed = new Promise<CloseEvent>((resolve) => ws.onclose = resolve);
  const stream: Stream = {
    events,
    async [Symbol.asyncDispose]() {
      if (ws.readyState !== WebSocket.CLOSED) ws.close();
      await closed;
    },
  };
  const opened = await Promise.race([
    new Promise<boolean>((resolve) => ws.onopen = () => resolve(true)),
    closed.then(() => false),
  ]);
  if (!opened) throw new Error(`WebSocket /v1/stream?${query} closed before it opened`);
  await waitFor(async () => (await metric(node, "twinmill_ws_clients")) >= clients, {
    message: `node counts ${clients} stream client(s)`,
  });
  return stream;
}

const PUT = (attributes: Record<string, unknown>): RequestInit => ({
  method: "PUT",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ attributes }),
});

Deno.test("types=telemetry on twin X: exactly X's telemetry events, in order, with X's versions", async () => {
  await using node = await startNode();
  const X = "press-x";
  const Y = "press-y";
  await using stream = await openStream(node, `twins=${X}&types=telemetry`);

  assert.equal(
    (await getJson(`${node.httpUrl}/v1/twins/${X}`, PUT({ type: "press" }))).status,
    201,
  );
  let xVersion = 1;
  const expected: Array<Pick<TwinEvent, "version" | "ts" | "data">> = [];
  const t0 = Date.now() - 10_000;
  {
    await using dev = await connectDevice(node, "dev-stream-xy");
    const sent: Promise<void>[] = [];
    for (let i = 0; i < 30; i++) {
      sent.push(dev.publish(`twins/${X}/telemetry`, { temp: i, on: i % 2 === 0, ts: t0 + i }));
      expected.push({ version: ++xVersion, ts: t0 + i, data: { temp: i, on: i % 2 === 0 } });
      sent.push(dev.publish(`twins/${Y}/telemetry`, { temp: 100 + i, ts: t0 + i }));
      if (i % 5 === 4) {
        sent.push(dev.publish(`twins/${X}/reported`, { note: i }));
        xVersion++;
      }
      if (i === 10) {
        sent.push(dev.publish(`twins/${X}/status`, "online"));
        xVersion++;
      }
    }
    await Promise.all(sent);
    // Everything of X and Y is applied (and its events sent) before the last X message.
    await waitFor(async () => (await twinVersion(node, Y)) === 30, { message: "Y at version 30" });
    await waitFor(async () => (await twinVersion(node, X)) === xVersion, {
      message: `X at version ${xVersion}`,
    });
    await dev.publish(`twins/${X}/telemetry`, { temp: 999, ts: t0 + 999 });
    expected.push({ version: ++xVersion, ts: t0 + 999, data: { temp: 999 } });
  }

  await waitFor(() => stream.events.some((e) => e.data?.temp === 999), {
    message: "the last telemetry event of X",
  });
  assert.deepEqual(
    stream.events,
    expected.map((e) => ({ type: "telemetry", twin: X, ...e })),
  );
  assert.equal(await twinVersion(node, X), xVersion);
});

Deno.test("types=state: attribute puts, desired patches, reported patches and connectivity", async () => {
  await using node = await startNode();
  const S = "conveyor-s";
  await using stream = await openStream(node, `twins=${S}&types=state`);

  const put = await getJson(`${node.httpUrl}/v1/twins/${S}`, PUT({ site: "A", type: "conveyor" }));
  assert.equal(put.status, 201, JSON.stringify(put.body));
  const patch = await getJson(`${node.httpUrl}/v1/twins/${S}/desired`, {
    method: "PATCH",
    headers: { "content-type": "application/merge-patch+json", "if-match": "1" },
    body: JSON.stringify({ speed: 10, mode: "auto" }),
  });
  assert.equal(patch.status, 200, JSON.stringify(patch.body));
  assert.equal(patch.body.version, 2);
  // Another twin's state changes are not on this stream.
  assert.equal((await getJson(`${node.httpUrl}/v1/twins/other`, PUT({ site: "B" }))).status, 201);
  {
    await using dev = await connectDevice(node, "dev-stream-s");
    await dev.publish(`twins/${S}/telemetry`, { temp: 1 }); // version 3: not a state event
    await dev.publish(`twins/${S}/reported`, { fw: "1.2", old: null }); // version 4
    await dev.publish(`twins/${S}/status`, "online"); // version 5
  }

  await waitFor(() => stream.events.some((e) => e.data?.connectivity), {
    message: "the connectivity event",
  });
  const since = stream.events.at(-1)?.data.connectivity.since;
  assert.equal(typeof since, "number");
  assert.deepEqual(
    stream.events.map(({ ts: _, ...e }) => e),
    [
      { type: "state", twin: S, version: 1, data: { attributes: { site: "A", type: "conveyor" } } },
      { type: "state", twin: S, version: 2, data: { desired: { speed: 10, mode: "auto" } } },
      { type: "state", twin: S, version: 4, data: { reported: { fw: "1.2", old: null } } },
      {
        type: "state",
        twin: S,
        version: 5,
        data: { connectivity: { status: "online", since } },
      },
    ],
  );
  for (const e of stream.events) assert.equal(typeof e.ts, "number");
  const twin = await getJson(`${node.httpUrl}/v1/twins/${S}`);
  assert.deepEqual(twin.body.connectivity, { status: "online", since });
  assert.equal(twin.body.version, 5);
});

Deno.test("no twins filter: events of every twin (default types telemetry and state)", async () => {
  await using node = await startNode();
  await using stream = await openStream(node, "");

  assert.equal((await getJson(`${node.httpUrl}/v1/twins/all-a`, PUT({ site: "A" }))).status, 201);
  {
    await using dev = await connectDevice(node, "dev-stream-all");
    await dev.publish("twins/all-b/telemetry", { temp: 7 });
    await dev.publish("twins/all-c/reported", { fw: "2" });
  }
  await waitFor(() => stream.events.length >= 3, { message: "three events" });
  // Different twins: their relative order is not specified.
  assert.deepEqual(
    stream.events.map(({ type, twin, version, data }) => ({ type, twin, version, data }))
      .sort((a, b) => a.twin.localeCompare(b.twin)),
    [
      { type: "state", twin: "all-a", version: 1, data: { attributes: { site: "A" } } },
      { type: "telemetry", twin: "all-b", version: 1, data: { temp: 7 } },
      { type: "state", twin: "all-c", version: 1, data: { reported: { fw: "2" } } },
    ],
  );
});

Deno.test("a bad stream query is a 400 in the error envelope", async () => {
  await using node = await startNode();
  const cases: Array<[string, RegExp]> = [
    ["types=bogus", /bogus/],
    ["types=telemetry,bogus", /bogus/],
    ["twins=ok,bad%20id", /bad id/],
    ["twins=a/b", /a\/b/],
    [`twins=${"x".repeat(129)}`, /twin id/],
  ];
  for (const [query, message] of cases) {
    const { status, body } = await getJson(`${node.httpUrl}/v1/stream?${query}`);
    assert.equal(status, 400, `${query}: ${JSON.stringify(body)}`);
    assert.equal(typeof body.error?.code, "string", `${query}: ${JSON.stringify(body)}`);
    assert.match(body.error.message, message, query);
  }
  const badId = await getJson(`${node.httpUrl}/v1/stream?twins=bad%24id`);
  assert.equal(badId.body.error.code, "bad_twin_id");

  // A WebSocket client with a bad query is refused at the handshake.
  const ws = new WebSocket(`ws://127.0.0.1:${node.httpPort}/v1/stream?types=bogus`);
  const outcome = await new Promise<string>((resolve) => {
    ws.onopen = () => resolve("open");
    ws.onclose = () => resolve("closed");
  });
  if (ws.readyState !== WebSocket.CLOSED) {
    const closed = new Promise((r) => ws.onclose = r);
    ws.close();
    await closed;
  }
  assert.equal(outcome, "closed");
});

// ---- slow consumer -------------------------------------------------------------------------

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Buffered reads from a raw TCP connection: exact byte counts, HTTP head, WebSocket frames. */
class ConnReader {
  #buf = new Uint8Array(0);
  constructor(readonly conn: Deno.Conn) {}

  async #fill(n: number): Promise<void> {
    const chunk = new Uint8Array(64 * 1024);
    while (this.#buf.length < n) {
      const got = await this.conn.read(chunk);
      if (got === null) {
        throw new Error(`connection closed after ${this.#buf.length} of ${n} bytes`);
      }
      const next = new Uint8Array(this.#buf.length + got);
      next.set(this.#buf);
      next.set(chunk.subarray(0, got), this.#buf.length);
      this.#buf = next;
    }
  }

  async take(n: number): Promise<Uint8Array> {
    await this.#fill(n);
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return out;
  }

  /** Reads the HTTP response head (up to the blank line, which is consumed too). */
  async head(): Promise<string> {
    for (;;) {
      const end = indexOfBlankLine(this.#buf);
      if (end >= 0) return dec.decode(await this.take(end + 4)).slice(0, end);
      await this.#fill(this.#buf.length + 1);
    }
  }

  /** Reads one unmasked server frame: its opcode and payload. */
  async frame(): Promise<{ opcode: number; payload: Uint8Array }> {
    const [b0, b1] = await this.take(2);
    let len = b1 & 0x7f;
    if (len === 126) len = new DataView((await this.take(2)).buffer).getUint16(0);
    else if (len === 127) len = Number(new DataView((await this.take(8)).buffer).getBigUint64(0));
    assert.equal(b1 & 0x80, 0, "server frames are not masked");
    return { opcode: b0 & 0x0f, payload: await this.take(len) };
  }
}

/** Index of the first `\r\n\r\n` in `buf`, or -1. */
function indexOfBlankLine(buf: Uint8Array): number {
  for (let i = 0; i + 3 < buf.length; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let o = 0; o < data.length;) o += await conn.write(data.subarray(o));
}

Deno.test("a client that never reads is dropped with 1013; ingest never waits for it", async () => {
  await using node = await startNode();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: node.httpPort });
  try {
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    await writeAll(
      conn,
      enc.encode(
        `GET /v1/stream?types=telemetry HTTP/1.1\r\nHost: 127.0.0.1:${node.httpPort}\r\n` +
          `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
          `Sec-WebSocket-Version: 13\r\n\r\n`,
      ),
    );
    const reader = new ConnReader(conn);
    const head = await reader.head();
    assert.match(head, /^HTTP\/1\.1 101 /, head);
    const digest = await crypto.subtle.digest(
      "SHA-1",
      enc.encode(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"),
    );
    const accept = btoa(String.fromCharCode(...new Uint8Array(digest)));
    assert.match(
      head,
      new RegExp(`^sec-websocket-accept: ${accept.replace(/[+/]/g, "\\$&")}$`, "im"),
    );
    await waitFor(async () => (await metric(node, "twinmill_ws_clients")) >= 1, {
      message: "node counts the raw stream client",
    });

    // From here on the client reads nothing while ~30 KB events pile up.
    const id = "flood-1";
    const blob = "x".repeat(30_000);
    let sent = 0;
    let dropped = 0;
    {
      await using dev = await connectDevice(node, "dev-flood");
      const publishBatch = (n: number) =>
        Promise.all(
          Array.from({ length: n }, () => {
            const i = sent++;
            return dev.publish(`twins/${id}/telemetry`, { blob, i });
          }),
        );
      while (sent < 1000) {
        await publishBatch(25); // every PUBACK arrives: ingest does not wait for the client
        dropped = await metric(node, "twinmill_ws_clients_dropped_total");
        if (dropped >= 1) break;
      }
      assert.ok(dropped >= 1, `no client dropped after ${sent} events of ~30 KB`);
      await publishBatch(25); // and still after the drop
    }
    await waitFor(async () => (await twinVersion(node, id)) === sent, {
      message: `twin ${id} at version ${sent}`,
    });
    const health = await fetch(`${node.httpUrl}/healthz`);
    assert.equal(health.status, 200);
    await health.body?.cancel();

    // Reading now drains what the node had sent, then its close frame with code 1013.
    let events = 0;
    for (;;) {
      const { opcode, payload } = await reader.frame();
      if (opcode === 0x1) {
        events++;
        continue;
      }
      assert.equal(opcode, 0x8, `unexpected opcode ${opcode}`);
      assert.ok(payload.length >= 2, "close frame has a status code");
      assert.equal(new DataView(payload.buffer, payload.byteOffset).getUint16(0), 1013);
      break;
    }
    assert.ok(events < sent, `the dropped client got ${events} of ${sent} events`);
  } finally {
    conn.close();
  }
  await waitFor(async () => (await metric(node, "twinmill_ws_clients")) === 0, {
    message: "twinmill_ws_clients back to 0",
  });
});
