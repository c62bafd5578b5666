import assert from "node:assert/strict";
import { formatSummary, progressLine, summarize } from "./report.ts";
import { Tally } from "./tally.ts";

const run = { devices: 3, brokers: 2, qos: 1 as const, seed: 1, faultSpec: "all", rate: 100 };

function tally(sent: number, acked: number, failed = 0): Tally {
  const t = new Tally();
  t.sent = sent;
  t.acked = acked;
  t.failed = failed;
  t.byKind.telemetry = sent - 2;
  t.byKind.malformed = 2;
  for (const ms of [1, 2, 3, 4, 100]) t.latency.record(ms);
  return t;
}

Deno.test("summary: OK only when every QoS 1 message is acknowledged and verification is exact", () => {
  const sending = { seconds: 4, sent: 380 };
  const good = summarize(tally(400, 400), run, sending);
  assert.equal(good.ok, true);
  assert.equal(good.achievedRate, 95, "messages sent while sending, per second");
  assert.equal(good.rejected, 2);
  assert.equal(good.unacked, 0);
  assert.equal(good.latencyMs!.max, 100);
  assert.ok(good.latencyMs!.p50 >= 3 && good.latencyMs!.p50 <= 3.07);

  const lost = summarize(tally(400, 398), run, sending);
  assert.equal(lost.ok, false);
  assert.equal(lost.unacked, 2);
  assert.equal(summarize(tally(400, 399, 1), run, sending).ok, false, "a failed publish");

  const v = {
    twins: 3,
    matched: 2,
    seconds: 0.2,
    mismatches: [{ id: "x", expected: 9, tolerance: 0, actual: 8 }],
  };
  const wrong = summarize(tally(400, 400), run, sending, v);
  assert.equal(wrong.ok, false);
  assert.match(formatSummary(wrong), /verify +1 of 3 twins do not match: x expected 9 got 8/);
  assert.match(formatSummary(wrong), /result +FAILED/);

  const exact = summarize(tally(400, 400), run, sending, { ...v, matched: 3, mismatches: [] });
  assert.equal(exact.ok, true);
  const text = formatSummary(exact);
  assert.match(text, /3 devices on 2 brokers, QoS 1/);
  assert.match(text, /acked +400 +failed 0 +unacked 0/);
  assert.match(text, /rejected +2 malformed/);
  assert.match(text, /verify +3 twins, every version exact/);
  assert.match(text, /result +OK/);
});

Deno.test("summary: QoS 0 has no acknowledgements to wait for", () => {
  const t = tally(50, 0);
  t.latency.reset();
  const s = summarize(t, { ...run, qos: 0 }, { seconds: 1, sent: 50 });
  assert.equal(s.ok, true);
  assert.equal(s.latencyMs, null);
  assert.match(formatSummary(s), /written +50 +failed 0 +\(QoS 0/);
});

Deno.test("progress: one line with the window's rate and latency", () => {
  const t = tally(400, 390);
  t.window.record(2);
  const line = progressLine(12.3, t, 500, 5, 10, 3, 4);
  assert.equal(line.includes("\n"), false);
  assert.match(
    line,
    /^12s sent 400 acked 390 rejected 2 inflight 10 100 msg\/s p50 2 ms p99 2 ms up 3\/4$/,
  );
});
