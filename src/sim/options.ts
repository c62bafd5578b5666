/**
 * Command-line options of `deno task simulate`, parsed with `node:util` `parseArgs` and checked;
 * a bad flag is a {@linkcode UsageError} with one clear line.
 * @module
 */
import { parseArgs } from "node:util";
import { type FaultConfig, FaultSpecError, parseFaults } from "./faults.ts";
import { MAX_LINES, MAX_SITES } from "./plant.ts";

/** Everything the simulator needs to run. */
export interface SimOptions {
  devices: number;
  /** Messages per second, all devices together. */
  rate: number;
  /** Seconds to send; 0 = until stopped (Ctrl-C). */
  duration: number;
  /** MQTT brokers (one node, or the nodes of a cluster: devices spread round-robin). */
  mqtt: string[];
  /** HTTP gateway of any node: attributes, credentials, verification. */
  http: string;
  apiKey?: string;
  sites: number;
  lines: number;
  seed: number;
  faults: FaultConfig;
  /** The `--faults` text as given (for the summary). */
  faultSpec: string;
  qos: 0 | 1;
  /** Issue a device token per device and connect with it. */
  auth: boolean;
  prefix: string;
  /** Print the summary as JSON. */
  json: boolean;
  /** After the run, check every twin's version against what was sent. */
  verify: boolean;
  /** Length of a shift in seconds (the sine period of most signals; idle changeover at its end). */
  shift: number;
  /** Most unacknowledged QoS 1 messages per device. */
  inflight: number;
}

/** A flag that cannot be used; its message is one line for the user. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Default `--faults`: everything but malformed messages. */
export const DEFAULT_FAULTS = "overheat,stuck,dropout,storm";

/** `--help` text. */
export const USAGE = `Usage: deno task simulate [options]

A factory: presses, conveyors, CNC machines and environmental sensors over sites and lines,
sending telemetry over MQTT with sine, noise, drift and injected faults.

Options:
  --devices N        devices (default 100)
  --rate R           messages per second, all devices together (default 100)
  --duration S       seconds to send; 0 = until Ctrl-C (default 60)
  --mqtt URL[,URL]   broker(s); several = a cluster, devices spread round-robin
                     (default mqtt://127.0.0.1:1883)
  --http URL         HTTP gateway for attributes, credentials, --verify (default http://127.0.0.1:8080)
  --api-key KEY      Bearer key for HTTP (default: env TWINMILL_API_KEY)
  --sites N          sites, named A, B, ... (default 2, at most ${MAX_SITES})
  --lines N          lines per site (default 4, at most ${MAX_LINES})
  --seed N           seed of the plant, signals and faults (default 1)
  --faults LIST      comma list (default ${DEFAULT_FAULTS}); "none": no faults,
                     "all": every one at its default; later items override earlier ones:
                       overheat[=PER_DEVICE_PER_MIN[:MEAN_SECONDS]]   (default 0.1:40)
                       stuck[=PER_DEVICE_PER_MIN[:MEAN_SECONDS]]      (default 0.1:20)
                       dropout[=PER_DEVICE_PER_MIN[:MEAN_SECONDS]]    (default 0.05:8)
                       storm[=EVERY_SECONDS[:FRACTION]]               (default 30:0.2)
                       malformed[=FRACTION_OF_MESSAGES]               (default 0.001)
  --qos 0|1          MQTT QoS (default 1)
  --auth             issue a token per device (POST /v1/twins/{id}/credentials) and connect
                     with it; revoked at the end (for TWINMILL_MQTT_AUTH=on)
  --prefix P         prepended to every device id (default none: A-L1-press-001)
  --shift S          shift length in seconds: the period of slow sines, idle changeover at its
                     end (default 480)
  --inflight N       most unacknowledged messages per device (default 16)
  --verify           afterwards, check every twin's version equals the changes sent to it
  --json             print the summary as JSON
  --help             this text

Progress goes to stderr, the summary to stdout. Exit code 0 when every QoS 1 message was
acknowledged (and --verify found every twin exact), 1 otherwise, 2 for bad options.`;

function int(flag: string, v: string | undefined, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (v.trim() === "" || !Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`--${flag}: expected an integer from ${min} to ${max}, got "${v}"`);
  }
  return n;
}

function real(flag: string, v: string | undefined, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`--${flag}: expected a number from ${min} to ${max}, got "${v}"`);
  }
  return n;
}

function url(flag: string, v: string, protocols: string[]): string {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new UsageError(`--${flag}: "${v}" is not a URL`);
  }
  if (!protocols.includes(u.protocol)) {
    throw new UsageError(`--${flag}: "${v}" must start with ${protocols.join(" or ")}//`);
  }
  return v.replace(/\/+$/, "");
}

const PREFIX_RE = /^[A-Za-z0-9_.:-]{0,80}$/;

/**
 * Parse the command line. Returns `"help"` for `--help`; throws {@linkcode UsageError}.
 *
 * @example
 * ```ts
 * const o = parseOptions(["--devices", "20", "--rate", "200"], {});
 * ```
 */
export function parseOptions(
  args: string[],
  env: Record<string, string | undefined>,
): SimOptions | "help" {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        devices: { type: "string" },
        rate: { type: "string" },
        duration: { type: "string" },
        mqtt: { type: "string" },
        http: { type: "string" },
        "api-key": { type: "string" },
        sites: { type: "string" },
        lines: { type: "string" },
        seed: { type: "string" },
        faults: { type: "string" },
        qos: { type: "string" },
        auth: { type: "boolean" },
        prefix: { type: "string" },
        shift: { type: "string" },
        inflight: { type: "string" },
        verify: { type: "boolean" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (err) {
    // parseArgs' messages are one line, e.g. "Unknown option '--foo'"
    const msg = err instanceof Error ? err.message.split("\n")[0] : String(err);
    throw new UsageError(`${msg} (see --help)`);
  }
  if (values.help) return "help";
  const faultSpec = values.faults ?? DEFAULT_FAULTS;
  let faults: FaultConfig;
  try {
    faults = parseFaults(faultSpec);
  } catch (err) {
    if (err instanceof FaultSpecError) throw new UsageError(err.message);
    throw err;
  }
  const qos = values.qos ?? "1";
  if (qos !== "0" && qos !== "1") throw new UsageError(`--qos: expected 0 or 1, got "${qos}"`);
  const prefix = values.prefix ?? "";
  if (!PREFIX_RE.test(prefix)) {
    throw new UsageError(
      `--prefix: at most 80 of A-Z a-z 0-9 _ - . : (twin id characters), got "${prefix}"`,
    );
  }
  const mqtt = (values.mqtt ?? "mqtt://127.0.0.1:1883").split(",").map((s) => s.trim())
    .filter((s) => s !== "").map((s) => url("mqtt", s, ["mqtt:", "mqtts:", "tcp:"]));
  if (mqtt.length === 0) throw new UsageError("--mqtt: at least one broker URL");
  const apiKey = values["api-key"] ?? env.TWINMILL_API_KEY;
  return {
    devices: int("devices", values.devices, 100, 1, 100_000),
    rate: real("rate", values.rate, 100, 0.1, 1_000_000),
    duration: real("duration", values.duration, 60, 0, 31 * 86_400),
    mqtt,
    http: url("http", values.http ?? "http://127.0.0.1:8080", ["http:", "https:"]),
    ...(apiKey ? { apiKey } : {}),
    sites: int("sites", values.sites, 2, 1, MAX_SITES),
    lines: int("lines", values.lines, 4, 1, MAX_LINES),
    seed: int("seed", values.seed, 1, 0, 2 ** 32 - 1),
    faults,
    faultSpec,
    qos: qos === "0" ? 0 : 1,
    auth: values.auth ?? false,
    prefix,
    json: values.json ?? false,
    verify: values.verify ?? false,
    shift: real("shift", values.shift, 480, 1, 7 * 86_400),
    inflight: int("inflight", values.inflight, 16, 1, 1000),
  };
}
