import assert from "node:assert/strict";
import { DenialGate } from "./audit_gate.ts";
import { AuditLog } from "./audit.ts";
import type { AuditInput } from "./audit_entry.ts";

const denied = (i: number): AuditInput => ({
  actor: `provisioning-key:pk_${String(i).padStart(12, "0")}`,
  action: "provision",
  result: "denied",
  detail: { code: "provisioning_key_invalid" },
});
const ok: AuditInput = { actor: "key:admin", action: "twin.put", target: "p-1", result: "ok" };

Deno.test("DenialGate: refusals past the bucket are counted, summarised, never successes", () => {
  let now = 1_000_000;
  let left = 0;
  const summaries: number[] = [];
  const gate = new DenialGate({
    perSecond: 10,
    burst: 5,
    now: () => now,
    onSuppressed: () => left++,
    onSummary: (n) => summaries.push(n),
  });
  // a flood of 100 refusals in the same ms, each from a different (made-up) key id
  const written = Array.from({ length: 100 }, (_, i) => gate.admit(denied(i))).flat();
  assert.equal(written.length, 5, "the burst");
  assert.equal(left, 95);
  assert.equal(gate.suppressed, 95);
  // successes are never held back
  for (let i = 0; i < 20; i++) assert.deepEqual(gate.admit(ok), [ok]);
  // a second later: 10 more tokens; the first one carries the summary
  now += 1000;
  const next = gate.admit(denied(1000));
  assert.equal(next.length, 2);
  assert.equal(next[0].action, "audit.suppressed");
  assert.equal(next[0].actor, "twinmill");
  assert.deepEqual(next[0].detail, { entries: 95, since: new Date(1_000_000).toISOString() });
  assert.equal(next[1].actor, denied(1000).actor, "then the refusal itself");
  assert.deepEqual(summaries, [95]);
  assert.equal(gate.suppressed, 0);
  // at most one summary every 10 s
  for (let i = 0; i < 50; i++) gate.admit(denied(i));
  now += 1000;
  assert.equal(gate.admit(denied(7)).length, 1, "no second summary within 10 s");
  now += 10_000;
  assert.equal(gate.admit(denied(8))[0].action, "audit.suppressed");
  assert.throws(() => new DenialGate({ perSecond: 0, burst: 1 }), RangeError);
});

Deno.test("DenialGate on an AuditLog: a flood of refusals leaves the successes in the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await using audit = await AuditLog.open(dir);
    audit.gate = new DenialGate({ perSecond: 1, burst: 10 });
    audit.record(ok);
    for (let i = 0; i < 10_000; i++) audit.record(denied(i));
    audit.record({ ...ok, target: "p-2" });
    await audit.flush();
    const all = await audit.query({ limit: 1000 });
    assert.equal(all.length, 12, "2 successes and the 10 refusals of the burst");
    assert.deepEqual(all.filter((e) => e.result === "ok").map((e) => e.target), ["p-2", "p-1"]);
    assert.equal(audit.gate.suppressed, 9_990);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
