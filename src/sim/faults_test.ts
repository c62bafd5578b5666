import assert from "node:assert/strict";
import {
  FAULT_DEFAULTS,
  type FaultEvent,
  FaultPlanner,
  FaultSpecError,
  NO_FAULTS,
  parseFaults,
} from "./faults.ts";

Deno.test("parseFaults: none, all, defaults, rates and lengths", () => {
  assert.deepEqual(parseFaults("none"), NO_FAULTS);
  const all = parseFaults("all");
  assert.deepEqual(all.overheat, FAULT_DEFAULTS.overheat);
  assert.deepEqual(all.storm, FAULT_DEFAULTS.storm);
  assert.equal(all.malformed, FAULT_DEFAULTS.malformed);
  const some = parseFaults("dropout=3:1.5, storm=2:0.3,malformed=0.02,stuck=1");
  assert.deepEqual(some.dropout, { perMinute: 3, seconds: 1.5 });
  assert.deepEqual(some.storm, { every: 2, fraction: 0.3 });
  assert.equal(some.malformed, 0.02);
  assert.deepEqual(some.stuck, { perMinute: 1, seconds: FAULT_DEFAULTS.stuck.seconds });
  assert.equal(some.overheat, null);
  const more = parseFaults("all,storm=10:0.5");
  assert.deepEqual(more.storm, { every: 10, fraction: 0.5 }, "later items override all");
  assert.deepEqual(more.dropout, FAULT_DEFAULTS.dropout);
});

Deno.test("parseFaults: one clear message per mistake", () => {
  const bad: Array<[string, RegExp]> = [
    ["fire", /unknown fault "fire"/],
    ["dropout=x", /dropout: the rate must be a number/],
    ["dropout=1:0", /dropout: the length must be a number in \[0.1/],
    ["storm=10:1.5", /storm: the fraction must be a number in \[0, 1\]/],
    ["storm=1:2:3", /too many values/],
    ["malformed=0.1:2", /one value only/],
  ];
  for (const [spec, re] of bad) {
    assert.throws(
      () => parseFaults(spec),
      (e) => e instanceof FaultSpecError && re.test(e.message),
      spec,
    );
  }
});

const plan = (spec: string, devices: number, seconds: number, seed = 42) =>
  new FaultPlanner(parseFaults(spec), devices, seed).advance(seconds);

Deno.test("planner: the same seed plans the same faults, in any step size", () => {
  const a = plan("all", 50, 120);
  assert.deepEqual(a, plan("all", 50, 120));
  assert.notDeepEqual(a, plan("all", 50, 120, 43));
  const p = new FaultPlanner(parseFaults("all"), 50, 42);
  const steps: FaultEvent[] = [];
  for (let s = 0; s <= 120; s += 7) steps.push(...p.advance(s));
  steps.push(...p.advance(120));
  assert.deepEqual(steps, a);
  assert.deepEqual(p.advance(100), [], "the past is not planned again");
});

Deno.test("planner: per-device faults start at about their rate and never overlap", () => {
  // 1 per device per minute, 5 s long, 200 devices, 10 minutes: about 200 × 10 × (55/60)
  const events = plan("overheat=1:5", 200, 600);
  assert.ok(events.length > 1500 && events.length < 2100, `${events.length} overheats`);
  const byDevice = new Map<number, Array<{ at: number; seconds: number }>>();
  for (const e of events) {
    if (e.kind !== "overheat") throw new Error(`unexpected ${e.kind}`);
    assert.ok(e.seconds >= 2.5 && e.seconds < 7.5, "0.5–1.5 × the mean length");
    assert.ok(e.pick >= 0 && e.pick < 1);
    const list = byDevice.get(e.device) ?? [];
    list.push(e);
    byDevice.set(e.device, list);
  }
  for (const list of byDevice.values()) {
    for (let i = 1; i < list.length; i++) {
      assert.ok(list[i].at >= list[i - 1].at + list[i - 1].seconds, "one at a time per device");
    }
  }
});

Deno.test("planner: storms every N seconds take the fraction of devices not in a dropout", () => {
  const events = plan("storm=10:0.25,dropout=6:30", 40, 60);
  const storms = events.filter((e) => e.kind === "storm");
  assert.deepEqual(storms.map((s) => s.at), [10, 20, 30, 40, 50, 60]);
  for (const s of storms) {
    if (s.kind !== "storm") continue;
    const down = new Set(
      events.filter((e) => e.kind === "dropout" && e.at <= s.at && e.at + e.seconds > s.at)
        .map((e) => e.kind === "dropout" ? e.device : -1),
    );
    assert.equal(s.devices.length, Math.round((40 - down.size) * 0.25));
    assert.equal(new Set(s.devices).size, s.devices.length, "distinct devices");
    assert.ok(s.devices.every((d) => !down.has(d)), "none of them already dropped out");
  }
});

Deno.test("planner: nothing when every fault is off", () => {
  assert.deepEqual(plan("none", 100, 600), []);
  assert.deepEqual(plan("malformed=0.5", 100, 600), [], "malformed is per message, not planned");
});
