import assert from "node:assert/strict";
import { continueTrace, currentTrace, traceparentOf, withTrace } from "./trace.ts";
import { createLogger, levelOf, parseLogSpec } from "./log.ts";

Deno.test("trace: a valid traceparent is continued, a bad or all-zero one starts a new trace", () => {
  const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const c = continueTrace(tp, "req-1");
  assert.equal(c.traceId, "4bf92f3577b34da6a3ce929d0e0e4736");
  assert.notEqual(c.spanId, "00f067aa0ba902b7", "a new span of the same trace");
  assert.match(traceparentOf(c), /^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
  for (const bad of [undefined, "", "garbage", `00-${"0".repeat(32)}-00f067aa0ba902b7-01`]) {
    const n = continueTrace(bad);
    assert.match(n.traceId, /^[0-9a-f]{32}$/);
    assert.notEqual(n.traceId, "0".repeat(32));
  }
});

Deno.test("trace: log lines inside a context carry its trace and request ids, across awaits", async () => {
  const lines: string[] = [];
  const log = createLogger("info", "twinmill", (l) => lines.push(l)).child("http");
  const ctx = continueTrace(null, "req-9");
  await withTrace(ctx, async () => {
    await new Promise((r) => setTimeout(r, 1));
    log.info("inside");
  });
  log.info("outside");
  assert.equal(currentTrace(), undefined);
  const [inside, outside] = lines.map((l) => JSON.parse(l));
  assert.equal(inside.traceId, ctx.traceId);
  assert.equal(inside.requestId, "req-9");
  assert.equal(outside.traceId, undefined);
});

Deno.test("TWINMILL_LOG: a default level and per-module levels, most specific wins", () => {
  const spec = parseLogSpec("warn,mqtt=debug,cluster=error,cluster.router=debug");
  assert.equal(levelOf(spec, "twinmill"), "warn");
  assert.equal(levelOf(spec, "twinmill.mqtt"), "debug");
  assert.equal(levelOf(spec, "twinmill.mqttx"), "warn", "a prefix of a name is not its parent");
  assert.equal(levelOf(spec, "twinmill.cluster.inbound"), "error");
  assert.equal(levelOf(spec, "twinmill.cluster.router"), "debug");
  assert.throws(() => parseLogSpec("info,mqtt=loud"), /"mqtt=loud": level must be/);
  assert.throws(() => parseLogSpec("verbose"), /"verbose": level must be/);
  const lines: string[] = [];
  const root = createLogger(spec, "twinmill", (l) => lines.push(l));
  root.child("mqtt").debug("shown");
  root.child("http").info("hidden");
  root.child("cluster").child("router").debug("shown too");
  assert.deepEqual(lines.map((l) => JSON.parse(l).msg), ["shown", "shown too"]);
});
