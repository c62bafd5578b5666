/**
 * Start-up that waits (cluster mode): a node started before its NATS server serves health
 * and readiness while it waits, and becomes ready without a restart once NATS is up; the
 * wait has a limit (TWINMILL_STARTUP_TIMEOUT); NATS going away later drops readiness, and
 * it comes back with NATS.
 */
import assert from "node:assert/strict";
import {
  freePort,
  getJson,
  type HasHttp,
  publishQos1,
  runNode,
  startNats,
  startNode,
  waitFor,
} from "../harness/mod.ts";

const readyz = (node: HasHttp) => getJson(`${node.httpUrl}/readyz`);

async function twinVersion(node: HasHttp, id: string): Promise<number | null> {
  const r = await getJson(`${node.httpUrl}/v1/twins/${id}`);
  return r.status === 200 ? r.body.version : null;
}

Deno.test("cluster start-up: a node started before NATS waits, serving health, then gets ready", async () => {
  await using nats = await startNats({ jetstream: true, deferred: true });
  await using node = await startNode(
    { NATS_URL: nats.url, TWINMILL_SHARDS: "4" },
    { until: "http" },
  );
  const line = await node.waitForLog((r) => r.msg.startsWith("waiting for NATS/JetStream"));
  assert.equal(line.level, "warn");
  assert.match(line.msg, new RegExp(`^waiting for NATS/JetStream at ${nats.url}: cannot connect`));

  // about 5 s of waiting (5 attempts: 0.25 + 0.5 + 1 + 2 s of backoff and the tries)
  const seen = await waitFor(async () => {
    assert.equal((await getJson(`${node.httpUrl}/healthz`)).status, 200);
    const r = await readyz(node);
    assert.equal(r.status, 503, "not ready while NATS is not there");
    return r.body.waitingFor?.attempts >= 5 && r.body;
  }, { timeoutMs: 20_000, intervalMs: 200, message: "5 attempts to reach NATS" });
  assert.equal(seen.error.code, "not_ready");
  assert.match(seen.error.message, /^Waiting for NATS\/JetStream at nats:\/\/127\.0\.0\.1:\d+: /);
  assert.equal(seen.waitingFor.what, "NATS/JetStream");
  assert.equal(seen.waitingFor.at, nats.url);
  assert.match(seen.waitingFor.reason, /^cannot connect: /);
  // other routes say the node is starting
  const twin = await getJson(`${node.httpUrl}/v1/twins/press-1`);
  assert.equal(twin.status, 503);
  assert.equal(twin.body.error.code, "starting");
  // one line now and then, not one per attempt
  const waitingLines = node.logs.filter((l) => l.includes('"msg":"waiting for NATS/JetStream'));
  assert.equal(waitingLines.length, 1, waitingLines.join("\n"));
  assert.ok(!node.logs.some((l) => l.includes('"msg":"ready"')), "not ready before NATS");

  await nats.start();
  const ready = await node.waitForLog((r) => r.msg === "ready", 30_000);
  assert.ok(node.logs.some((l) => l.includes('"msg":"NATS/JetStream is up"')));
  await waitFor(async () => (await readyz(node)).status === 200, {
    timeoutMs: 30_000,
    message: "/readyz 200 once NATS is up",
  });
  const pub = await publishQos1(ready, "twins/press-1/telemetry", '{"temp":21.5}');
  assert.equal(pub.code, 0, pub.stderr);
  await waitFor(async () => (await twinVersion(node, "press-1")) === 1, {
    message: "the message is applied",
  });
  const body = (await getJson(`${node.httpUrl}/v1/twins/press-1`)).body;
  assert.equal(body.reported.temp, 21.5);
});

Deno.test("cluster start-up: TWINMILL_STARTUP_TIMEOUT ends the wait with one clear line", async () => {
  const port = await freePort(); // nothing listens there
  const res = await runNode({
    NATS_URL: `nats://app:s3cret@127.0.0.1:${port}`,
    TWINMILL_STARTUP_TIMEOUT: "2",
  });
  assert.equal(res.code, 1, res.stderr);
  const lines = res.stderr.trim().split("\n");
  assert.equal(
    lines.at(-1),
    `twinmill: cannot start: gave up waiting for NATS/JetStream at nats://127.0.0.1:${port} ` +
      `after 2 s (TWINMILL_STARTUP_TIMEOUT): cannot connect: connection refused`,
  );
  // the rest are JSON log lines (no stack trace), and no credentials anywhere
  for (const l of lines.slice(0, -1)) JSON.parse(l);
  assert.ok(!res.stderr.includes("s3cret"), res.stderr);
  assert.ok(!res.stderr.includes("app:"), res.stderr);

  const bad = await runNode({ NATS_URL: "nats://127.0.0.1:4222", TWINMILL_STARTUP_TIMEOUT: "5m" });
  assert.equal(bad.code, 2);
  assert.equal(
    bad.stderr.trim(),
    "twinmill: Invalid configuration: TWINMILL_STARTUP_TIMEOUT: must be whole seconds " +
      '0-2592000 (0 = wait forever), got "5m"',
  );
});

Deno.test("cluster: NATS down for a while under a running node: readiness drops, then recovers", async () => {
  await using nats = await startNats({ jetstream: true });
  await using node = await startNode({ NATS_URL: nats.url, TWINMILL_SHARDS: "4" });
  await waitFor(async () => (await readyz(node)).status === 200, { timeoutMs: 30_000 });
  assert.equal((await publishQos1(node, "twins/press-2/telemetry", '{"n":1}')).code, 0);
  await waitFor(async () => (await twinVersion(node, "press-2")) === 1);

  await nats.stop();
  const down = await waitFor(async () => {
    const r = await readyz(node);
    return r.status === 503 && r.body;
  }, { message: "/readyz 503 while NATS is down" });
  assert.match(down.error.message, /^NATS connection lost: reconnecting to nats:\/\//);
  // down for a while: long enough for its shard leases (3 s) to lapse
  await node.waitForLog((r) => r.msg.startsWith("shard lease lost"), 20_000);
  assert.equal((await getJson(`${node.httpUrl}/healthz`)).status, 200);

  await nats.start();
  await waitFor(async () => (await readyz(node)).status === 200, {
    timeoutMs: 30_000,
    message: "/readyz 200 again after NATS is back",
  });
  assert.equal((await publishQos1(node, "twins/press-2/telemetry", '{"n":2}')).code, 0);
  await waitFor(async () => (await twinVersion(node, "press-2")) === 2, {
    message: "a message after the restart is applied",
  });
  // the same process all along
  assert.ok(!node.logs.some((l) => l.includes('"msg":"cannot start"')));
  assert.equal(node.logs.filter((l) => l.includes('"msg":"ready"')).length, 1);
});
