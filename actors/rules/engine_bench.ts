/**
 * Micro benchmark of the rules engine: one telemetry message through a profile of 10 mixed
 * rules (the per-message cost the twin runtime pays). Run:
 * `deno bench actors/rules/engine_bench.ts`. The empty profile is the baseline.
 * @module
 */
import { evaluate, tick } from "./engine.ts";
import type { RulesState } from "./state.ts";
import { compile } from "./testing.ts";

const mixed = compile(
  { id: "overheat", kind: "threshold", field: "temp", op: ">", value: 80, clear: 75 },
  { id: "cold", kind: "threshold", field: "temp", op: "<", value: 5, forSeconds: 30 },
  { id: "overpressure", kind: "threshold", field: "pressure", op: ">=", value: 9 },
  { id: "ramp", kind: "rate", field: "temp", limit: 5, windowSeconds: 10 },
  { id: "db", kind: "deadband", field: "pressure", band: 0.05 },
  { id: "roll", kind: "window", fields: ["temp", "rpm"], seconds: 60 },
  { id: "odd", kind: "anomaly", field: "rpm" },
  { id: "quiet", kind: "stale", seconds: 30 },
  { id: "hot_auto", kind: "expression", expr: "temp > 70 && mode == 'auto'" },
  { id: "load", kind: "expression", expr: "rpm / max(pressure, 1) > 900", forSeconds: 5 },
);
const empty = compile();

const N = 4096;
const messages = Array.from({ length: N }, (_, i) => {
  const fields = {
    temp: 60 + 10 * Math.sin(i / 50),
    rpm: 1500 + (i % 17),
    pressure: 4 + (i % 100) / 100,
    mode: i % 500 < 250 ? "auto" : "manual",
  };
  return { fields, reported: fields, ts: 1_700_000_000_000 + i * 40 };
});

function bench(profile: typeof mixed) {
  let state: RulesState | undefined;
  let i = 0;
  let ts0 = 0;
  return () => {
    const m = messages[i % N];
    // keep time moving forward across laps of the message list
    const ts = m.ts + ts0;
    const out = evaluate(profile, state, { fields: m.fields, reported: m.reported, ts }, ts);
    state = out.state;
    if (++i % N === 0) {
      ts0 += N * 40;
      state = tick(profile, state, ts + 40).state;
    }
  };
}

Deno.bench({ name: "evaluate, empty profile (baseline)", baseline: true, fn: bench(empty) });
Deno.bench({ name: "evaluate, 10 mixed rules", fn: bench(mixed) });
