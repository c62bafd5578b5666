/**
 * The simulated plant: sites × lines, each line a mix of presses, conveyors, CNC machines and
 * environmental sensors, and {@linkcode DeviceSim}, one device's signals with its faults.
 * Pure: values depend only on the seed and the times asked for.
 * @module
 */
import { type Rng, rng, seedOf } from "./prng.ts";
import { type FieldSpec, type FieldState, initialField, round, sampleField } from "./signals.ts";

/** The kinds of machines in a line. */
export type MachineKind = "press" | "conveyor" | "cnc" | "env";

/** What a kind of machine reports and who makes it. */
export interface KindSpec {
  fields: FieldSpec[];
  /** The field an overheat drives past `threshold`. */
  hot: { field: string; threshold: number };
  vendor: string;
  models: string[];
}

/** Every machine kind. Temperatures °C, pressure bar, speed m/s, load kg, current A. */
export const KINDS: Readonly<Record<MachineKind, KindSpec>> = {
  press: {
    fields: [
      { name: "temp", base: 55, amplitude: 6, noise: 0.4, drift: 1.5, decimals: 1 },
      { name: "pressure", base: 180, amplitude: 15, period: 40, noise: 2, idle: 0, decimals: 1 },
      { name: "strokes", base: 0, counter: 0.8, decimals: 0 },
      { name: "vibration", base: 2.5, noise: 0.3, idle: 0.1, min: 0, decimals: 2 },
    ],
    hot: { field: "temp", threshold: 80 },
    vendor: "Hartwig",
    models: ["HP-250", "HP-400", "HP-630"],
  },
  conveyor: {
    fields: [
      { name: "speed", base: 1.2, amplitude: 0.1, noise: 0.02, idle: 0, min: 0, decimals: 2 },
      {
        name: "load",
        base: 400,
        amplitude: 150,
        period: 90,
        noise: 20,
        idle: 0,
        min: 0,
        decimals: 0,
      },
      {
        name: "motor_current",
        base: 12,
        amplitude: 2,
        period: 90,
        noise: 0.3,
        idle: 0.5,
        decimals: 2,
      },
      { name: "motor_temp", base: 50, amplitude: 4, noise: 0.3, drift: 1, decimals: 1 },
    ],
    hot: { field: "motor_temp", threshold: 90 },
    vendor: "Lindqvist",
    models: ["BL-900", "BL-1200"],
  },
  cnc: {
    fields: [
      {
        name: "spindle_rpm",
        base: 12000,
        amplitude: 2000,
        period: 60,
        noise: 50,
        idle: 0,
        min: 0,
        decimals: 0,
      },
      { name: "spindle_temp", base: 42, amplitude: 4, noise: 0.3, drift: 1, decimals: 1 },
      { name: "tool_wear", base: 0, wear: 0.05, max: 100, decimals: 2 },
      { name: "vibration", base: 1.2, noise: 0.2, idle: 0.05, min: 0, decimals: 2 },
    ],
    hot: { field: "spindle_temp", threshold: 80 },
    vendor: "Meridian",
    models: ["VMC-5X", "VMC-3X", "HMC-800"],
  },
  env: {
    fields: [
      { name: "temp", base: 21.5, amplitude: 1.5, noise: 0.1, drift: 0.5, decimals: 2 },
      {
        name: "humidity",
        base: 45,
        amplitude: 5,
        noise: 0.5,
        drift: 2,
        min: 0,
        max: 100,
        decimals: 1,
      },
      { name: "pm25", base: 12, noise: 2, drift: 3, min: 0, decimals: 1 },
    ],
    hot: { field: "temp", threshold: 35 },
    vendor: "Aerotec",
    models: ["ES-3", "ES-3P"],
  },
};

/** The kinds along a line, repeated: more conveyors and presses than CNC machines and sensors. */
export const LINE_MIX: readonly MachineKind[] = [
  "press",
  "conveyor",
  "cnc",
  "conveyor",
  "press",
  "env",
  "cnc",
  "conveyor",
];

/** Most sites (named A to Z). */
export const MAX_SITES = 26;
/** Most lines per site. */
export const MAX_LINES = 99;

/** Shape of the plant. */
export interface PlantOptions {
  devices: number;
  sites: number;
  /** Lines per site. */
  lines: number;
  /** Prepended to every device id. */
  prefix: string;
  seed: number;
}

/** One device of the plant. */
export interface DeviceSpec {
  /** Position in the plant (0-based). */
  index: number;
  /** e.g. `A-L1-press-003`. */
  id: string;
  kind: MachineKind;
  /** Provisioned with `PUT /v1/twins/{id}`: `{type, site, line, model, vendor}`. */
  attributes: { type: MachineKind; site: string; line: string; model: string; vendor: string };
}

/**
 * Lay out the plant: devices go round-robin over every line of every site, and along each line
 * follow {@linkcode LINE_MIX}; each kind is numbered per line from 1.
 *
 * @example
 * ```ts
 * buildPlant({ devices: 4, sites: 1, lines: 2, prefix: "", seed: 1 }).map((d) => d.id);
 * // ["A-L1-press-001", "A-L2-press-001", "A-L1-conveyor-001", "A-L2-conveyor-001"]
 * ```
 */
export function buildPlant(o: PlantOptions): DeviceSpec[] {
  const slots = o.sites * o.lines;
  const numbers = new Map<string, number>();
  const r = rng(seedOf(o.seed, "plant"));
  const out: DeviceSpec[] = [];
  for (let i = 0; i < o.devices; i++) {
    const slot = i % slots;
    const site = String.fromCharCode(65 + Math.floor(slot / o.lines));
    const line = `L${(slot % o.lines) + 1}`;
    const kind = LINE_MIX[Math.floor(i / slots) % LINE_MIX.length];
    const key = `${site}-${line}-${kind}`;
    const n = (numbers.get(key) ?? 0) + 1;
    numbers.set(key, n);
    const k = KINDS[kind];
    out.push({
      index: i,
      id: `${o.prefix}${key}-${String(n).padStart(3, "0")}`,
      kind,
      attributes: {
        type: kind,
        site,
        line,
        model: k.models[r.int(k.models.length)],
        vendor: k.vendor,
      },
    });
  }
  return out;
}

/** A device's operating mode: idle during the changeover at the end of each shift. */
export type Mode = "running" | "idle";

/** Fraction of a shift spent in changeover (idle). */
export const CHANGEOVER = 1 / 12;

/** 0 → 1 over the first half, held until 80 %, back to 0 at the end: an overheat's profile. */
export function overheatShape(x: number): number {
  if (x <= 0 || x >= 1) return 0;
  if (x < 0.5) return x / 0.5;
  if (x < 0.8) return 1;
  return (1 - x) / 0.2;
}

/** A malformed payload on the telemetry topic: not JSON, not an object, or a nested value. */
export function malformedPayload(r: Rng): string {
  switch (r.int(3)) {
    case 0:
      return '{"temp": 21.5, "pressure":'; // truncated JSON
    case 1:
      return "[21.5, 180.2]"; // not an object
    default:
      return '{"temp": {"value": 21.5}}'; // telemetry fields must be scalars
  }
}

interface Running {
  start: number;
  seconds: number;
}

/**
 * One simulated device: its signals over time, overheat and stuck faults, its mode.
 *
 * @example
 * ```ts
 * const sim = new DeviceSim(buildPlant(opts)[0], 42, 480);
 * sim.sample(1.5).fields; // { temp: 55.8, pressure: 181.3, strokes: 1, vibration: 2.41 }
 * ```
 */
export class DeviceSim {
  readonly spec: DeviceSpec;
  readonly #kind: KindSpec;
  readonly #rng: Rng;
  readonly #shift: number;
  readonly #phase: number;
  #states: FieldState[];
  #last: number | undefined;
  #overheat: Running | undefined;
  #stuck: (Running & { field: string; value?: number }) | undefined;

  constructor(spec: DeviceSpec, seed: number, shiftSeconds: number) {
    this.spec = spec;
    this.#kind = KINDS[spec.kind];
    this.#rng = rng(seedOf(seed, "device", spec.index));
    this.#shift = shiftSeconds;
    this.#phase = this.#rng.next();
    this.#states = this.#kind.fields.map(initialField);
  }

  /** The device's random stream (for choices such as malformed payloads). */
  get rng(): Rng {
    return this.#rng;
  }

  /** Start an overheat at `t` lasting `seconds`. */
  overheat(t: number, seconds: number): void {
    this.#overheat = { start: t, seconds };
  }

  /** Freeze one field (chosen by `pick` in [0, 1)) from `t` for `seconds`; returns its name. */
  stick(t: number, seconds: number, pick: number): string {
    const fields = this.#kind.fields;
    const field = fields[Math.min(fields.length - 1, Math.floor(pick * fields.length))].name;
    this.#stuck = { start: t, seconds, field };
    return field;
  }

  /** Whether an overheat or stuck fault is on at `t`. */
  faulty(t: number): { overheat: boolean; stuck: string | null } {
    const on = (f: Running | undefined) =>
      f !== undefined && t >= f.start && t < f.start + f.seconds;
    return { overheat: on(this.#overheat), stuck: on(this.#stuck) ? this.#stuck!.field : null };
  }

  /** Running, or idle in the changeover at the end of each shift (sites are a shift apart). */
  mode(t: number): Mode {
    const site = this.spec.attributes.site.charCodeAt(0) - 65;
    const x = ((t / this.#shift + site * 0.37) % 1 + 1) % 1;
    return x >= 1 - CHANGEOVER ? "idle" : "running";
  }

  /** Telemetry at `t` seconds into the run (times must not go backwards). */
  sample(t: number): { fields: Record<string, number>; mode: Mode } {
    const dt = this.#last === undefined ? 0 : Math.max(0, t - this.#last);
    this.#last = t;
    const mode = this.mode(t);
    const fields: Record<string, number> = {};
    const specs = this.#kind.fields;
    for (let i = 0; i < specs.length; i++) {
      const s = sampleField(
        specs[i],
        this.#states[i],
        t,
        dt,
        mode === "running",
        this.#phase,
        this.#shift,
        this.#rng,
      );
      this.#states[i] = s.state;
      fields[specs[i].name] = s.value;
    }
    const oh = this.#overheat;
    if (oh && t >= oh.start && t < oh.start + oh.seconds) {
      const hot = this.#kind.hot;
      const base = specs.find((f) => f.name === hot.field)!.base;
      const peak = hot.threshold * 1.1 - base;
      const decimals = specs.find((f) => f.name === hot.field)!.decimals;
      const shape = overheatShape((t - oh.start) / oh.seconds);
      fields[hot.field] = round(fields[hot.field] + peak * shape, decimals);
    } else if (oh && t >= oh.start + oh.seconds) {
      this.#overheat = undefined;
    }
    const st = this.#stuck;
    if (st && t >= st.start && t < st.start + st.seconds) {
      if (st.value === undefined) st.value = fields[st.field];
      fields[st.field] = st.value;
    } else if (st && t >= st.start + st.seconds) {
      this.#stuck = undefined;
    }
    return { fields, mode };
  }

  /** What the device reports about itself when it first comes up (a `reported` patch). */
  identity(t: number): Record<string, string | number> {
    const serial = seedOf(this.spec.id, "serial").toString(16).padStart(8, "0").toUpperCase();
    return {
      firmware: `${2 + (this.spec.index % 2)}.${this.spec.index % 7}.1`,
      serial: `${this.spec.kind.toUpperCase()}-${serial}`,
      mode: this.mode(t),
    };
  }
}
