import assert from "node:assert/strict";
import { transportConformance } from "../../tests/conformance/transport_conformance.ts";
import { freePort, startNats, startNatsCluster, waitFor } from "../../tests/harness/mod.ts";
import { createLogger, silentLogger } from "../obs/log.ts";
import { natsTransport, redact } from "./nats.ts";
import { type Transport, TransportError } from "./port.ts";
import { subjects } from "./subjects.ts";

/** One nats-server per test; disposing the transport also stops its server. */
transportConformance("nats transport", async () => {
  const server = await startNats();
  try {
    const t = await natsTransport({ servers: server.url, logger: silentLogger });
    let disposed: Promise<void> | undefined;
    const dispose = async () => {
      try {
        await t[Symbol.asyncDispose]();
      } finally {
        await server[Symbol.asyncDispose]();
      }
    };
    return { ...t, [Symbol.asyncDispose]: () => disposed ??= dispose() } satisfies Transport;
  } catch (err) {
    await server[Symbol.asyncDispose]();
    throw err;
  }
});

/** A logger that keeps its JSON lines, parsed. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const logger = createLogger("debug", "test", (line) => {
    raw.push(line);
    lines.push(JSON.parse(line));
  });
  return { logger, lines, raw };
}

Deno.test("redact drops user info from server URLs", () => {
  assert.equal(redact("nats://alice:s3cret@10.0.0.1:4222"), "nats://10.0.0.1:4222");
  assert.equal(redact("tok3n@127.0.0.1:4222"), "127.0.0.1:4222");
  assert.equal(redact("127.0.0.1:4222"), "127.0.0.1:4222");
});

Deno.test("nats transport: a failed connect names the server, never its credentials", async () => {
  const port = await freePort();
  await assert.rejects(
    natsTransport({ servers: `nats://alice:s3cret@127.0.0.1:${port}`, logger: silentLogger }),
    (e) =>
      e instanceof Error && e.message.includes(`nats://127.0.0.1:${port}`) &&
      !e.message.includes("s3cret"),
  );
});

Deno.test("nats transport: a throwing subscriber or a non-JSON message breaks nothing", async () => {
  await using server = await startNats();
  const { logger, lines } = capturingLogger();
  await using t = await natsTransport({ servers: server.url, logger });
  const got: unknown[] = [];
  using _bad = t.subscribe("x.bad", () => {
    throw new Error("boom");
  });
  using _s = t.subscribe("x.good", (m) => got.push(m.data));
  using _e = t.subscribe("svc.echo", (m) => m.respond(m.data));
  t.publish("x.bad", 1);
  t.nc.publish("x.good", "not json {");
  t.publish("x.good", 2);
  await waitFor(() => got.length === 1, { message: "the JSON message after the bad ones" });
  assert.deepEqual(got, [2]);
  assert.equal(await t.request("svc.echo", "still up"), "still up");
  assert.ok(lines.some((l) => l.level === "error" && l.msg === "subscriber threw"));
  assert.ok(lines.some((l) => l.level === "warn" && l.msg === "nats message is not JSON, dropped"));
});

Deno.test("nats transport: a request pending when the transport is disposed rejects closed", async () => {
  await using server = await startNats();
  await using t = await natsTransport({ servers: server.url, logger: silentLogger });
  let arrived = false;
  using _s = t.subscribe("svc.silent", () => arrived = true);
  const pending = t.request("svc.silent", 1, { timeoutMs: 30_000 });
  pending.catch(() => {}); // asserted below, after dispose
  await waitFor(() => arrived, { message: "request reached the responder" });
  await t[Symbol.asyncDispose]();
  await assert.rejects(pending, (e) => e instanceof TransportError && e.code === "closed");
});

Deno.test("nats transport: dispose does not wait for a server that is gone", async () => {
  const server = await startNats();
  const { logger, lines } = capturingLogger();
  try {
    await using t = await natsTransport({ servers: server.url, logger, drainTimeoutMs: 30_000 });
    await server[Symbol.asyncDispose]();
    await waitFor(() => lines.some((l) => l.msg === "nats disconnected"), {
      message: "disconnect logged",
    });
    const started = Date.now();
    await t[Symbol.asyncDispose]();
    assert.ok(Date.now() - started < 5_000, `dispose took ${Date.now() - started} ms`);
  } finally {
    await server[Symbol.asyncDispose]();
  }
});

Deno.test("nats transport: subscriptions and request/reply survive a failover to another server", async () => {
  await using cluster = await startNatsCluster(3);
  const { logger, lines, raw } = capturingLogger();
  // the moving transport knows every server; it reconnects to another when its server stops.
  // (the servers have no auth and ignore the user info; it must not show in any log line)
  const servers = cluster.servers.map((s) => `nats://alice:s3cret@127.0.0.1:${s.port}`);
  await using mover = await natsTransport({ servers, name: "mover", logger });
  const home = cluster.servers.find((s) => mover.nc.getServer() === `127.0.0.1:${s.port}`);
  assert.ok(home, `connected to a cluster member, got ${mover.nc.getServer()}`);
  const other = cluster.servers.find((s) => s !== home)!;
  await using fixed = await natsTransport({
    servers: other.url,
    name: "fixed",
    logger: silentLogger,
  });

  const id = "plant.a:press-7";
  const atFixed: unknown[] = [];
  const atMover: unknown[] = [];
  using _f = fixed.subscribe(subjects.eventsOf("*", id), (m) => atFixed.push(m.data));
  using _m = mover.subscribe(subjects.eventsOf("*", id), (m) => atMover.push(m.data));
  using _fe = fixed.subscribe("svc.fixed", (m) => m.respond({ from: "fixed", got: m.data }));
  using _me = mover.subscribe("svc.mover", (m) => m.respond({ from: "mover", got: m.data }));

  // interest crosses the cluster's routes asynchronously: publish until it arrives
  let n = 0;
  const roundTrip = async (label: string) => {
    await waitFor(() => {
      mover.publish(subjects.event("telemetry", id), { n: ++n });
      fixed.publish(subjects.event("state", id), { n: ++n });
      return atFixed.length > 0 && atMover.length > 0;
    }, { message: `${label}: events cross between the servers` });
    assert.deepEqual(
      await waitFor(() => mover.request("svc.fixed", label, { timeoutMs: 1000 })),
      { from: "fixed", got: label },
    );
    assert.deepEqual(
      await waitFor(() => fixed.request("svc.mover", label, { timeoutMs: 1000 })),
      { from: "mover", got: label },
    );
  };
  await roundTrip("before");

  await home.stop();
  await waitFor(() => lines.some((l) => l.msg === "nats reconnected"), {
    message: "mover reconnected to another server",
  });
  assert.notEqual(mover.nc.getServer(), `127.0.0.1:${home.port}`);
  atFixed.length = 0;
  atMover.length = 0;
  await roundTrip("after");

  const disconnect = lines.find((l) => l.msg === "nats disconnected");
  assert.equal(disconnect?.level, "warn");
  assert.equal(disconnect?.server, `127.0.0.1:${home.port}`);
  const reconnect = lines.find((l) => l.msg === "nats reconnected");
  assert.equal(reconnect?.level, "info");
  assert.equal(reconnect?.server, mover.nc.getServer());
  assert.ok(raw.every((l) => !l.includes("s3cret")));

  await home.start();
});
