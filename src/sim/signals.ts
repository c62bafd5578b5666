/**
 * Signal generators for simulated sensors: a sine over the shift cycle, gaussian noise, a
 * slow mean-reverting drift, linear wear that resets, and counters. Each field is described
 * by a {@linkcode FieldSpec}; {@linkcode sampleField} is a pure step
 * `(spec, state, t, dt, active, rng) -> {value, state}`.
 * @module
 */
import type { Rng } from "./prng.ts";

/** How one numeric field of a device behaves. */
export interface FieldSpec {
  name: string;
  /** Mean value while the machine runs. */
  base: number;
  /** Amplitude of the sine (0 = none). */
  amplitude?: number;
  /** Period of the sine in seconds; default: the shift length. */
  period?: number;
  /** Standard deviation of the gaussian noise. */
  noise?: number;
  /** Drift: standard deviation reached by the slow random walk (0 = none). */
  drift?: number;
  /** Linear wear per second, reset to `base` when it passes `max` (a tool change). */
  wear?: number;
  /** Counter: increments per second while running (integer values). */
  counter?: number;
  /** Value while the machine is idle (e.g. speed 0); default `base`. */
  idle?: number;
  min?: number;
  max?: number;
  /** Decimal places of the published value. */
  decimals: number;
}

/** Per-field state carried between samples. */
export interface FieldState {
  /** Current drift offset. */
  drift: number;
  /** Wear accumulated since the last reset, or the counter's total. */
  acc: number;
}

/** The state of a field before its first sample. */
export function initialField(): FieldState {
  return { drift: 0, acc: 0 };
}

/** A sine of `amplitude` with `period` seconds at time `t` (phase as a fraction of a period). */
export function sine(t: number, period: number, amplitude: number, phase = 0): number {
  return amplitude * Math.sin(2 * Math.PI * (t / period + phase));
}

/** Gaussian noise of standard deviation `sigma`. */
export function noise(rng: Rng, sigma: number): number {
  return sigma === 0 ? 0 : sigma * rng.normal();
}

/** Time constant (s) of the drift's pull back to zero. */
export const DRIFT_TAU = 300;

/**
 * One step of an Ornstein–Uhlenbeck drift: a random walk pulled back towards 0 with time
 * constant {@linkcode DRIFT_TAU}, whose long-run standard deviation is `sigma`.
 */
export function driftStep(x: number, dt: number, sigma: number, rng: Rng): number {
  if (sigma === 0 || dt <= 0) return x;
  const decay = Math.exp(-dt / DRIFT_TAU);
  return x * decay + sigma * Math.sqrt(1 - decay * decay) * rng.normal();
}

/** Round to `decimals` places. */
export function round(v: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(v * f) / f;
}

/**
 * Sample one field at time `t` (s since the run started), `dt` seconds after its last sample,
 * with the machine running (`active`) or idle.
 */
export function sampleField(
  spec: FieldSpec,
  state: FieldState,
  t: number,
  dt: number,
  active: boolean,
  phase: number,
  shiftSeconds: number,
  rng: Rng,
): { value: number; state: FieldState } {
  if (spec.counter !== undefined) {
    const acc = state.acc + (active ? spec.counter * Math.max(0, dt) : 0);
    return { value: Math.floor(acc), state: { ...state, acc } };
  }
  const drift = driftStep(state.drift, dt, spec.drift ?? 0, rng);
  let acc = state.acc;
  if (spec.wear) {
    acc += active ? spec.wear * Math.max(0, dt) : 0;
    if (spec.max !== undefined && spec.base + acc > spec.max) acc = 0; // tool change
  }
  let v: number;
  if (!active && spec.idle !== undefined) {
    v = spec.idle + noise(rng, (spec.noise ?? 0) / 4);
  } else {
    v = spec.base + acc + drift + noise(rng, spec.noise ?? 0);
    if (spec.amplitude) v += sine(t, spec.period ?? shiftSeconds, spec.amplitude, phase);
  }
  if (spec.min !== undefined) v = Math.max(spec.min, v);
  if (spec.max !== undefined) v = Math.min(spec.max, v);
  return { value: round(v, spec.decimals), state: { drift, acc } };
}
