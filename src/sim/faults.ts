/**
 * Injected faults of the factory simulator and their schedule.
 *
 * - `overheat`: a device's hot field (press or environment temperature, CNC spindle
 *   temperature, conveyor motor temperature) ramps past its alarm threshold and back.
 * - `stuck`: one numeric field repeats the same value.
 * - `dropout`: the device's connection drops (no DISCONNECT, so the broker publishes its
 *   `offline` will), it stays silent, then reconnects and says `online`.
 * - `storm`: a fraction of the connected devices drop at the same moment and reconnect at
 *   once (within a second of jitter) — a reconnect storm.
 * - `malformed`: a fraction of the messages are not valid telemetry; the node acknowledges and
 *   drops them (counted apart: rejected by design).
 *
 * The {@linkcode FaultPlanner} is pure: with the same seed it plans the same faults at the same
 * seconds of the run, whatever the timing of the run itself.
 * @module
 */
import { type Rng, rng, seedOf } from "./prng.ts";

/** A fault that affects one device for a while. */
export type DeviceFaultKind = "overheat" | "stuck" | "dropout";

/** Every fault kind, in the order the CLI lists them. */
const FAULT_KINDS = ["overheat", "stuck", "dropout", "storm", "malformed"] as const;

/** Rate and mean length of a per-device fault. */
export interface DeviceFaultRate {
  /** Starts per device per minute. */
  perMinute: number;
  /** Mean length in seconds (each one lasts 0.5–1.5 × this). */
  seconds: number;
}

/** Which faults to inject, and how often. */
export interface FaultConfig {
  overheat: DeviceFaultRate | null;
  stuck: DeviceFaultRate | null;
  dropout: DeviceFaultRate | null;
  /** A storm every `every` seconds, dropping `fraction` of the connected devices. */
  storm: { every: number; fraction: number } | null;
  /** Fraction of messages sent malformed (0 = none). */
  malformed: number;
}

/** Defaults used when a fault is named without a value. */
export const FAULT_DEFAULTS: Readonly<{
  overheat: DeviceFaultRate;
  stuck: DeviceFaultRate;
  dropout: DeviceFaultRate;
  storm: { every: number; fraction: number };
  malformed: number;
}> = {
  overheat: { perMinute: 0.1, seconds: 40 },
  stuck: { perMinute: 0.1, seconds: 20 },
  dropout: { perMinute: 0.05, seconds: 8 },
  storm: { every: 30, fraction: 0.2 },
  malformed: 0.001,
};

/** No faults at all. */
export const NO_FAULTS: FaultConfig = {
  overheat: null,
  stuck: null,
  dropout: null,
  storm: null,
  malformed: 0,
};

/** A `--faults` value that cannot be understood. */
export class FaultSpecError extends Error {
  override name = "FaultSpecError";
}

function num(kind: string, what: string, s: string, min: number, max: number): number {
  const v = Number(s);
  if (s.trim() === "" || !Number.isFinite(v) || v < min || v > max) {
    throw new FaultSpecError(`--faults ${kind}: ${what} must be a number in [${min}, ${max}]`);
  }
  return v;
}

/**
 * Parse `--faults`: `none`, or a comma list of `all` (every fault at its default) and
 * `name[=a[:b]]` (later items override earlier ones):
 * `overheat|stuck|dropout=PER_DEVICE_PER_MINUTE[:MEAN_SECONDS]`, `storm=EVERY_SECONDS[:FRACTION]`,
 * `malformed=FRACTION`.
 *
 * @example
 * ```ts
 * parseFaults("dropout=3:1,storm=2:0.3,malformed=0.01");
 * ```
 */
export function parseFaults(spec: string): FaultConfig {
  const s = spec.trim();
  if (s === "none") return { ...NO_FAULTS };
  const out: FaultConfig = { ...NO_FAULTS };
  // "all" may start a list whose later items override it: "all,storm=10:0.5"
  const items = s.split(",").map((x) => x.trim()).flatMap((x) => x === "all" ? FAULT_KINDS : [x]);
  for (const item of items) {
    const [name, value] = item.split("=", 2) as [string, string | undefined];
    const [a, b, extra] = value === undefined ? [] : value.split(":");
    if (extra !== undefined) throw new FaultSpecError(`--faults ${name}: too many values`);
    switch (name) {
      case "overheat":
      case "stuck":
      case "dropout": {
        const d = FAULT_DEFAULTS[name];
        out[name] = {
          perMinute: a === undefined ? d.perMinute : num(name, "the rate", a, 0, 600),
          seconds: b === undefined ? d.seconds : num(name, "the length", b, 0.1, 86_400),
        };
        break;
      }
      case "storm": {
        const d = FAULT_DEFAULTS.storm;
        out.storm = {
          every: a === undefined ? d.every : num(name, "the interval", a, 0.5, 86_400),
          fraction: b === undefined ? d.fraction : num(name, "the fraction", b, 0, 1),
        };
        break;
      }
      case "malformed":
        if (b !== undefined) throw new FaultSpecError("--faults malformed: one value only");
        out.malformed = a === undefined
          ? FAULT_DEFAULTS.malformed
          : num(name, "the fraction", a, 0, 1);
        break;
      default:
        throw new FaultSpecError(
          `--faults: unknown fault "${name}" (expected none, all, ${FAULT_KINDS.join(", ")})`,
        );
    }
  }
  return out;
}

/** A fault starting at second `at` of the run. */
export type FaultEvent =
  | {
    kind: DeviceFaultKind;
    device: number;
    /** Second of the run at which it starts. */
    at: number;
    /** How long it lasts (s). */
    seconds: number;
    /** A uniform number in [0, 1) the device uses to pick what the fault touches. */
    pick: number;
  }
  | { kind: "storm"; at: number; devices: number[] };

const DEVICE_KINDS: DeviceFaultKind[] = ["overheat", "stuck", "dropout"];

/**
 * Plans faults second by second. Each device has at most one fault of each kind at a time; a
 * storm only takes devices that are not in a dropout.
 *
 * @example
 * ```ts
 * const planner = new FaultPlanner(parseFaults("all"), 100, 42);
 * const events = planner.advance(5); // faults starting in seconds 1..5
 * ```
 */
export class FaultPlanner {
  readonly #config: FaultConfig;
  readonly #devices: number;
  readonly #rng: Rng;
  /** Per kind and device: the second its current fault ends (0 = none). */
  readonly #busyUntil: Record<DeviceFaultKind, Float64Array>;
  #second = 0;

  constructor(config: FaultConfig, devices: number, seed: number) {
    this.#config = config;
    this.#devices = devices;
    this.#rng = rng(seedOf(seed, "faults"));
    this.#busyUntil = {
      overheat: new Float64Array(devices),
      stuck: new Float64Array(devices),
      dropout: new Float64Array(devices),
    };
  }

  /** The last second planned. */
  get second(): number {
    return this.#second;
  }

  /** Plan every second after the last one up to `second`; returns the faults starting. */
  advance(second: number): FaultEvent[] {
    const out: FaultEvent[] = [];
    while (this.#second < second) {
      this.#second++;
      this.#plan(this.#second, out);
    }
    return out;
  }

  #plan(t: number, out: FaultEvent[]): void {
    const r = this.#rng;
    for (const kind of DEVICE_KINDS) {
      const rate = this.#config[kind];
      if (!rate || rate.perMinute === 0) continue;
      const p = Math.min(1, rate.perMinute / 60);
      const busy = this.#busyUntil[kind];
      for (let d = 0; d < this.#devices; d++) {
        if (busy[d] > t) continue; // still in this fault
        if (r.next() >= p) continue;
        const seconds = rate.seconds * (0.5 + r.next());
        busy[d] = t + seconds;
        out.push({ kind, device: d, at: t, seconds, pick: r.next() });
      }
    }
    const storm = this.#config.storm;
    if (storm && storm.fraction > 0 && t % storm.every < 1 && t >= storm.every) {
      const free: number[] = [];
      const down = this.#busyUntil.dropout;
      for (let d = 0; d < this.#devices; d++) if (down[d] <= t) free.push(d);
      const n = Math.min(free.length, Math.round(free.length * storm.fraction));
      // partial Fisher–Yates: the first n of a shuffle
      for (let i = 0; i < n; i++) {
        const j = i + r.int(free.length - i);
        [free[i], free[j]] = [free[j], free[i]];
      }
      if (n > 0) {
        out.push({
          kind: "storm",
          at: t,
          devices: free.slice(0, n).sort((a, b) => a - b),
        });
      }
    }
  }
}
