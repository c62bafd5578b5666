/**
 * The benches' device load: input files of telemetry lines, N `mosquitto_pub -l` publishers
 * (one twin each), and the median of measured rounds.
 * @module
 */
import { exitedOk, startPub } from "./mosquitto.ts";

/** Which input: the warm-up or the measured run. */
export type InputKind = "warm" | "run";

/** Line `i` of an input: `temp` 20.0–29.9, `rpm` rising, `ok` true. */
export function telemetryLine(i: number): string {
  return `{"temp":${(20 + (i % 100) / 10).toFixed(1)},"rpm":${1000 + i},"ok":true}`;
}

/** Path of publisher `k`'s input of `kind`. */
export function inputFile(dir: string, kind: InputKind, k: number): string {
  return `${dir}/${kind}-${k}.txt`;
}

/** Writes `warm` and `run` lines for each of `n` publishers. */
export async function writeInputs(
  dir: string,
  n: number,
  counts: Record<InputKind, number>,
  line: (i: number) => string = telemetryLine,
): Promise<void> {
  for (let k = 0; k < n; k++) {
    for (const kind of ["warm", "run"] as const) {
      const lines = Array.from({ length: counts[kind] }, (_, i) => line(i));
      await Deno.writeTextFile(inputFile(dir, kind, k), lines.join("\n") + "\n");
    }
  }
}

/** Options of {@linkcode publishAll}. */
export interface PublishOptions {
  dir: string;
  /** Publisher k connects to `ports[k % ports.length]`. */
  ports: number[];
  n: number;
  /** `mosquitto_pub -M`; its default in-flight window (20) when absent. */
  inflight?: number;
  kind: InputKind;
  /** Twin of publisher k. */
  twin(k: number): string;
  /** MQTT client id of publisher k. */
  clientId(k: number): string;
}

/** Starts the `n` publishers; resolves when all have exited 0 (every PUBACK received). */
export async function publishAll(o: PublishOptions): Promise<void> {
  await Promise.all(Array.from({ length: o.n }, (_, k) => {
    const twin = o.twin(k);
    const p = startPub({
      port: o.ports[k % o.ports.length],
      topic: `twins/${twin}/telemetry`,
      input: inputFile(o.dir, o.kind, k),
      maxInflight: o.inflight,
      clientId: o.clientId(k),
    });
    return exitedOk(p, `mosquitto_pub ${twin}`);
  }));
}

/** The round with the median of `value` (the lower one for an even count). */
export function median<T>(runs: T[], value: (r: T) => number): T {
  return [...runs].sort((a, b) => value(a) - value(b))[Math.floor((runs.length - 1) / 2)];
}
