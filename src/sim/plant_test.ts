import assert from "node:assert/strict";
import { isValidTwinId, parseDeviceBody, parseDeviceTopic } from "../../actors/validate.ts";
import {
  buildPlant,
  CHANGEOVER,
  DeviceSim,
  KINDS,
  LINE_MIX,
  malformedPayload,
  overheatShape,
} from "./plant.ts";
import { rng } from "./prng.ts";

const plant = (devices: number, o: Partial<Parameters<typeof buildPlant>[0]> = {}) =>
  buildPlant({ devices, sites: 2, lines: 3, prefix: "", seed: 1, ...o });

const telemetry = (id: string, body: string) =>
  parseDeviceBody(
    parseDeviceTopic(`twins/${id}/telemetry`) as Exclude<
      ReturnType<typeof parseDeviceTopic>,
      string
    >,
    new TextEncoder().encode(body),
  );

Deno.test("plant: devices round-robin over sites and lines, kinds along each line, unique valid ids", () => {
  const p = plant(100, { prefix: "sim." });
  assert.deepEqual(p.slice(0, 7).map((d) => d.id), [
    "sim.A-L1-press-001",
    "sim.A-L2-press-001",
    "sim.A-L3-press-001",
    "sim.B-L1-press-001",
    "sim.B-L2-press-001",
    "sim.B-L3-press-001",
    "sim.A-L1-conveyor-001",
  ]);
  assert.equal(new Set(p.map((d) => d.id)).size, 100);
  assert.ok(p.every((d) => isValidTwinId(d.id)));
  for (const d of p) {
    const a = d.attributes;
    assert.equal(a.type, d.kind);
    assert.ok(d.id.startsWith(`sim.${a.site}-${a.line}-${d.kind}-`));
    assert.ok(KINDS[d.kind].models.includes(a.model));
    assert.equal(a.vendor, KINDS[d.kind].vendor);
  }
  const count = (k: string) => p.filter((d) => d.kind === k).length;
  const share = (k: string) => LINE_MIX.filter((x) => x === k).length / LINE_MIX.length;
  for (const k of ["press", "conveyor", "cnc", "env"]) {
    assert.ok(Math.abs(count(k) / 100 - share(k)) < 0.05, `${k}: ${count(k)}`);
  }
  assert.deepEqual(plant(100, { prefix: "sim." }), p, "same seed, same plant");
});

Deno.test("device: deterministic samples that the node accepts as telemetry", () => {
  for (const spec of plant(8)) {
    const a = new DeviceSim(spec, 9, 480), b = new DeviceSim(spec, 9, 480);
    for (let t = 0; t < 30; t += 0.7) {
      const s = a.sample(t);
      assert.deepEqual(s, b.sample(t));
      assert.deepEqual(Object.keys(s.fields), KINDS[spec.kind].fields.map((f) => f.name));
      const body = telemetry(spec.id, JSON.stringify({ ...s.fields, ts: 1 }));
      assert.equal(typeof body, "object", `accepted: ${JSON.stringify(s.fields)}`);
    }
  }
});

Deno.test("device: values stay near their base while running", () => {
  const press = new DeviceSim(plant(1)[0], 1, 480);
  const temps: number[] = [];
  for (let t = 0; t < 400; t += 1) temps.push(press.sample(t).fields.temp);
  assert.ok(
    temps.every((v) => v > 40 && v < 70),
    `press temp ${Math.min(...temps)}..${Math.max(...temps)}`,
  );
  assert.ok(new Set(temps).size > 100, "they move");
});

Deno.test("overheat: the hot field passes its threshold mid-fault and comes back", () => {
  assert.deepEqual(
    [0, 0.25, 0.5, 0.7, 0.9, 1].map((x) => Math.round(overheatShape(x) * 1e9) / 1e9),
    [0, 0.5, 1, 1, 0.5, 0],
  );
  for (const spec of plant(8)) {
    const hot = KINDS[spec.kind].hot;
    const sim = new DeviceSim(spec, 1, 480);
    sim.sample(0);
    sim.overheat(10, 20);
    assert.ok(sim.sample(5).fields[hot.field] < hot.threshold, "before");
    assert.deepEqual(sim.faulty(20), { overheat: true, stuck: null });
    assert.ok(sim.sample(20).fields[hot.field] > hot.threshold, `${spec.kind} ${hot.field} hot`);
    assert.ok(sim.sample(40).fields[hot.field] < hot.threshold, "after");
    assert.equal(sim.faulty(40).overheat, false);
  }
});

Deno.test("stuck: one field repeats its value for the fault's length, then moves again", () => {
  const spec = plant(1)[0]; // press: temp, pressure, strokes, vibration
  const sim = new DeviceSim(spec, 3, 480);
  sim.sample(0);
  assert.equal(sim.stick(1, 10, 0.6), "strokes");
  assert.equal(sim.stick(1, 10, 0.1), "temp");
  const during = [1, 2, 4, 8, 10.9].map((t) => sim.sample(t).fields.temp);
  assert.equal(new Set(during).size, 1, `stuck at ${during[0]}`);
  const after = [11, 12, 13].map((t) => sim.sample(t).fields.temp);
  assert.ok(new Set([...after, during[0]]).size > 1, "moves again");
});

Deno.test("mode: idle in the changeover at the end of each shift; sites shifted", () => {
  const [a, , , b] = plant(4, { sites: 2, lines: 2 }); // A-L1, A-L2, B-L1, B-L2
  const sa = new DeviceSim(a, 1, 100), sb = new DeviceSim(b, 1, 100);
  const idle = (s: DeviceSim) =>
    Array.from({ length: 1000 }, (_, i) => s.mode(i / 10)).filter((m) => m === "idle").length;
  assert.ok(Math.abs(idle(sa) / 1000 - CHANGEOVER) < 0.01);
  assert.equal(sa.mode(50), "running");
  assert.equal(sa.mode(95), "idle");
  assert.notEqual(sb.spec.attributes.site, sa.spec.attributes.site);
  assert.notDeepEqual(
    Array.from({ length: 100 }, (_, i) => sa.mode(i)),
    Array.from({ length: 100 }, (_, i) => sb.mode(i)),
  );
  const press = new DeviceSim(a, 1, 100);
  press.sample(0);
  assert.equal(press.sample(95).fields.pressure < 5, true, "no pressure while idle");
});

Deno.test("malformed payloads are all refused by the node's validation", () => {
  const r = rng(5);
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const p = malformedPayload(r);
    seen.add(p);
    assert.equal(typeof telemetry("A-L1-press-001", p), "string", `refused: ${p}`);
  }
  assert.equal(seen.size, 3, "every variant");
});

Deno.test("identity: firmware, serial and mode as a reported patch", () => {
  const sim = new DeviceSim(plant(1)[0], 1, 480);
  const id = sim.identity(0);
  assert.match(String(id.serial), /^PRESS-[0-9A-F]{8}$/);
  assert.match(String(id.firmware), /^\d+\.\d+\.\d+$/);
  assert.equal(id.mode, "running");
});
