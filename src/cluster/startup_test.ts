import assert from "node:assert/strict";
import { ManualClock, settle } from "../runtime/clock.ts";
import { createLogger } from "../obs/log.ts";
import { reasonOf, StartupTimeoutError, type Waiting, waitUntilUp } from "./startup.ts";

function captured() {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, logger: createLogger("info", "twinmill", (l) => lines.push(JSON.parse(l))) };
}

Deno.test("waitUntilUp: backs off 250 ms, doubling to 5 s, and logs now and then, not every try", async () => {
  const clock = new ManualClock(0);
  const { lines, logger } = captured();
  const tries: number[] = [];
  const waiting: Waiting[] = [];
  let reason = "cannot connect: connection refused";
  const up = waitUntilUp({
    what: "NATS/JetStream",
    at: "nats://127.0.0.1:4222",
    timeoutMs: 0,
    logger,
    clock,
    onWaiting: (w) => waiting.push(w),
    attempt() {
      tries.push(clock.now());
      if (tries.length === 8) reason = "JetStream not available: timeout";
      return tries.length < 16 ? Promise.reject(new Error(reason)) : Promise.resolve("conn");
    },
  });
  await settle(); // the first try fails and its pause starts
  for (let i = 0; i < 90 && tries.length < 16; i++) await clock.advance(1_000);
  assert.equal(await up, "conn");
  const gaps = tries.slice(1).map((t, i) => t - tries[i]);
  assert.deepEqual(gaps, [250, 500, 1000, 2000, 4000, ...Array(10).fill(5000)]);
  // the first failure, the new reason, the same reason again 30 s later; one line when up
  assert.deepEqual(lines.map((l) => [l.msg, l.attempts]), [
    ["waiting for NATS/JetStream at nats://127.0.0.1:4222: cannot connect: connection refused", 1],
    ["waiting for NATS/JetStream at nats://127.0.0.1:4222: JetStream not available: timeout", 8],
    ["waiting for NATS/JetStream at nats://127.0.0.1:4222: JetStream not available: timeout", 14],
    ["NATS/JetStream is up", 16],
  ]);
  assert.equal(lines[0].level, "warn");
  assert.equal(waiting.length, 15);
  assert.deepEqual(waiting.at(-1), {
    what: "NATS/JetStream",
    at: "nats://127.0.0.1:4222",
    reason: "JetStream not available: timeout",
    attempts: 15,
    since: new Date(0).toISOString(),
  });
});

Deno.test("waitUntilUp: gives up at the limit, also during a try that hangs", async () => {
  for (const hang of [false, true]) {
    const clock = new ManualClock(0);
    let tries = 0;
    const up = waitUntilUp({
      what: "NATS/JetStream",
      at: "nats://127.0.0.1:4222",
      timeoutMs: 3_000,
      logger: captured().logger,
      clock,
      attempt() {
        tries++;
        // a try that hangs: the second (a connect to a server that does not answer)
        if (hang && tries === 2) return new Promise(() => {});
        return Promise.reject(new Error("cannot connect: connection refused"));
      },
    });
    const outcome = up.then(() => "up", (err) => err);
    await clock.advance(2_999);
    await settle();
    assert.equal(await Promise.race([outcome, Promise.resolve("pending")]), "pending");
    await clock.advance(1);
    const err = await outcome;
    assert.ok(err instanceof StartupTimeoutError);
    assert.equal(err.code, "startup_timeout");
    assert.equal(
      err.message,
      "gave up waiting for NATS/JetStream at nats://127.0.0.1:4222 after 3 s " +
        "(TWINMILL_STARTUP_TIMEOUT): cannot connect: connection refused",
    );
  }
});

Deno.test("reasonOf: an error's message without credentials in URLs", () => {
  assert.equal(
    reasonOf(new Error("no route to nats://app:s3cret@10.0.0.1:4222, tls://tok@10.0.0.2:4222")),
    "no route to nats://10.0.0.1:4222, tls://10.0.0.2:4222",
  );
  assert.equal(reasonOf(Object.assign(new Error(""), { name: "TimeoutError" })), "TimeoutError");
  assert.equal(reasonOf("refused"), "refused");
});

Deno.test("waitUntilUp: a permanent failure (wrong credentials) ends the wait at once", async () => {
  const clock = new ManualClock(0);
  const { lines, logger } = captured();
  let tries = 0;
  const refused = new Error("NATS at nats://127.0.0.1:4222 refused the node's credentials");
  const up = waitUntilUp({
    what: "NATS/JetStream",
    at: "nats://127.0.0.1:4222",
    timeoutMs: 300_000,
    logger,
    clock,
    isPermanent: (err) => err === refused,
    attempt: () => {
      tries++;
      return Promise.reject(tries === 1 ? new Error("connection refused") : refused);
    },
  });
  const failed = assert.rejects(up, (err) => err === refused);
  // the first try waits (server not up yet); the refusal on the second is not waited out
  await settle();
  await clock.advance(250);
  await failed;
  assert.equal(tries, 2);
  assert.deepEqual(lines.map((l) => l.level), ["warn"]);
});
