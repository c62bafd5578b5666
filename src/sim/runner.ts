/**
 * The simulator's run: provision the twins' attributes (and tokens with `--auth`), connect every
 * device, send at the target rate with faults injected, stop cleanly, optionally verify every
 * twin's version, and summarize.
 *
 * Sending: one global scheduler spreads `rate` messages per second evenly, round-robin over the
 * devices (which are laid out line by line, so lines interleave); a device that is down or has
 * `inflight` messages unacknowledged is passed over. Messages the scheduler falls more than
 * 200 ms behind on are not sent late in a burst: they are counted as `skipped`.
 * @module
 */
import { SimDevice } from "./device.ts";
import { type FaultEvent, FaultPlanner } from "./faults.ts";
import { Api, pool } from "./http.ts";
import type { SimOptions } from "./options.ts";
import { buildPlant, DeviceSim, malformedPayload } from "./plant.ts";
import { rng, seedOf } from "./prng.ts";
import {
  type Mismatch,
  progressLine,
  summarize,
  type Summary,
  type Verification,
} from "./report.ts";
import { Tally } from "./tally.ts";

/** Where the run writes and what stops it. */
export interface RunHooks {
  /** Aborting stops sending; the run then ends cleanly and still summarizes. */
  signal?: AbortSignal;
  /** Writes progress and phase lines (default: stderr). */
  write?: (text: string) => void;
  /** Rewrite one progress line in place every second (default: whether stderr is a terminal). */
  tty?: boolean;
}

/** HTTP requests in parallel while provisioning, revoking and verifying. */
const HTTP_CONCURRENCY = 16;
/** Connections opened in parallel. */
const CONNECT_CONCURRENCY = 100;
/** How long a device may take to connect, and to have its last messages acknowledged (ms). */
const TIMEOUT_MS = 10_000;
/** How long `--verify` waits for every twin to catch up (ms). */
const VERIFY_MS = 20_000;
/** Scheduler tick (ms). */
const TICK_MS = 5;

const encoder = new TextEncoder();

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Run the simulation against a node or a cluster.
 *
 * @example
 * ```ts
 * const summary = await simulate(parseOptions(["--devices", "20", "--duration", "5"], {}) as SimOptions);
 * ```
 */
export async function simulate(o: SimOptions, hooks: RunHooks = {}): Promise<Summary> {
  const write = hooks.write ?? ((s: string) => void Deno.stderr.writeSync(encoder.encode(s)));
  const tty = hooks.tty ?? Deno.stderr.isTerminal();
  const say = (line: string) => write(tty ? `\r\x1b[K${line}\n` : `${line}\n`);
  const aborted = () => hooks.signal?.aborted === true;

  const tally = new Tally();
  const specs = buildPlant({
    devices: o.devices,
    sites: o.sites,
    lines: o.lines,
    prefix: o.prefix,
    seed: o.seed,
  });
  const devices = specs.map((spec, i) =>
    new SimDevice(
      new DeviceSim(spec, o.seed, o.shift),
      { url: o.mqtt[i % o.mqtt.length], qos: o.qos, timeoutMs: TIMEOUT_MS },
      tally,
    )
  );
  const api = new Api(o.http, o.apiKey);

  let sending = { seconds: 0, sent: 0 };
  try {
    say(`provisioning ${devices.length} twins through ${o.http}${o.auth ? " (with tokens)" : ""}`);
    await pool(devices, HTTP_CONCURRENCY, async (d) => {
      if (aborted()) return;
      d.baseline = await api.provision(d.id, { ...d.sim.spec.attributes });
      if (o.auth) {
        const t = await api.issueToken(d.id);
        d.credId = t.credId;
        d.token = t.token;
      }
    });
    say(`connecting ${devices.length} devices to ${o.mqtt.join(", ")}`);
    await pool(devices, CONNECT_CONCURRENCY, (d) => aborted() ? Promise.resolve() : d.connect());
    if (!aborted()) {
      const until = o.duration > 0 ? `for ${o.duration} s` : "until Ctrl-C";
      say(`sending ${o.rate} msg/s from ${devices.length} devices ${until}, faults ${o.faultSpec}`);
      sending = await send(o, devices, tally, hooks, write, tty);
    }
  } finally {
    // devices reconnecting right now get a moment to come up, then every one ends cleanly
    const t0 = performance.now();
    while (
      devices.some((d) => d.state === "connecting") && performance.now() - t0 < 3000
    ) await sleep(50);
    await pool(devices, 200, (d) => d.close(TIMEOUT_MS));
    if (o.auth) {
      await pool(devices, HTTP_CONCURRENCY, async (d) => {
        if (d.credId) await api.revokeToken(d.id, d.credId).catch(() => {});
      });
    }
  }
  let verification: Verification | undefined;
  if (o.verify) {
    say(`verifying ${devices.length} twins`);
    verification = await verify(api, devices);
  }
  return summarize(
    tally,
    {
      devices: devices.length,
      brokers: o.mqtt.length,
      qos: o.qos,
      seed: o.seed,
      faultSpec: o.faultSpec,
      rate: o.rate,
    },
    sending,
    verification,
  );
}

/** The sending loop; returns the seconds spent sending and the messages sent meanwhile. */
async function send(
  o: SimOptions,
  devices: SimDevice[],
  tally: Tally,
  hooks: RunHooks,
  write: (s: string) => void,
  tty: boolean,
): Promise<{ seconds: number; sent: number }> {
  const planner = new FaultPlanner(o.faults, devices.length, o.seed);
  const jitter = rng(seedOf(o.seed, "runner"));
  const dropped = new Set<SimDevice>();
  const sentBefore = tally.sent;
  const start = performance.now();
  const backlog = Math.max(1, Math.ceil(o.rate * 0.2));
  const every = tty ? 1 : 5;
  let scheduled = 0;
  let cursor = 0;
  let lastProgress = 0;
  let sentAtProgress = 0;
  let reconnectErrors = 0;
  let t = 0;

  const fault = (e: FaultEvent) => {
    if (e.kind === "storm") {
      let n = 0;
      for (const i of e.devices) {
        const d = devices[i];
        if (d.state !== "up") continue;
        d.reconnectAt = t + jitter.next(); // all at once, within a second
        d.drop();
        dropped.add(d);
        n++;
      }
      if (n > 0) {
        tally.faults.storms++;
        tally.faults.stormDevices += n;
      }
      return;
    }
    const d = devices[e.device];
    if (e.kind === "overheat") {
      d.sim.overheat(t, e.seconds);
      tally.faults.overheat++;
    } else if (e.kind === "stuck") {
      d.sim.stick(t, e.seconds, e.pick);
      tally.faults.stuck++;
    } else if (d.state === "up") {
      d.reconnectAt = t + e.seconds;
      d.drop();
      dropped.add(d);
      tally.faults.dropout++;
    }
  };

  while (!hooks.signal?.aborted) {
    t = (performance.now() - start) / 1000;
    if (o.duration > 0 && t >= o.duration) {
      t = o.duration;
      break;
    }
    for (const e of planner.advance(Math.floor(t))) fault(e);
    for (const d of dropped) {
      if (d.state !== "down" || d.reconnectAt > t) continue;
      dropped.delete(d);
      d.connect().catch((err) => {
        if (reconnectErrors++ < 5) write(`\n${err instanceof Error ? err.message : err}\n`);
      });
    }

    let due = Math.floor(o.rate * t) - scheduled;
    if (due > backlog) {
      tally.skipped += due - backlog;
      scheduled += due - backlog;
      due = backlog;
    }
    let passed = 0;
    while (due > 0 && passed < devices.length) {
      const d = devices[cursor];
      cursor = (cursor + 1) % devices.length;
      if (d.state !== "up" || d.inflight >= o.inflight) {
        passed++;
        continue;
      }
      passed = 0;
      due--;
      scheduled++;
      emit(d, t, o.faults.malformed);
    }

    if (t - lastProgress >= every) {
      const inflight = devices.reduce((n, d) => n + d.inflight, 0);
      const up = devices.reduce((n, d) => n + (d.state === "up" ? 1 : 0), 0);
      const line = progressLine(
        t,
        tally,
        tally.sent - sentAtProgress,
        t - lastProgress,
        inflight,
        up,
        devices.length,
      );
      write(tty ? `\r\x1b[K${line}` : `${line}\n`);
      tally.window.reset();
      lastProgress = t;
      sentAtProgress = tally.sent;
    }
    await sleep(TICK_MS);
  }
  if (tty) write("\n");
  return { seconds: t, sent: tally.sent - sentBefore };
}

/** One message from a device: its identity first, a mode change as `reported`, else telemetry. */
function emit(d: SimDevice, t: number, malformed: number): void {
  const base = `twins/${d.id}/`;
  if (malformed > 0 && d.sim.rng.next() < malformed) {
    d.publish("malformed", base + "telemetry", malformedPayload(d.sim.rng));
    return;
  }
  if (d.needIdentity) {
    d.needIdentity = false;
    const identity = d.sim.identity(t);
    d.lastMode = identity.mode as typeof d.lastMode;
    d.publish("reported", base + "reported", JSON.stringify(identity));
    return;
  }
  const s = d.sim.sample(t);
  if (s.mode !== d.lastMode) {
    d.lastMode = s.mode;
    d.publish("reported", base + "reported", JSON.stringify({ mode: s.mode }));
    return;
  }
  d.publish("telemetry", base + "telemetry", JSON.stringify({ ...s.fields, ts: Date.now() }));
}

/**
 * Read every twin until its version reaches what was sent to it — provisioning's version plus
 * one per acknowledged telemetry, reported and status message plus one per will — or until
 * {@linkcode VERIFY_MS}; a version above that (beyond the device's tolerance) is a mismatch too.
 */
async function verify(api: Api, devices: SimDevice[]): Promise<Verification> {
  const start = performance.now();
  const actual = new Map<string, number>();
  const expected = (d: SimDevice) => d.baseline + d.applied + d.wills;
  let pending = devices;
  while (pending.length > 0) {
    const versions = await pool(pending, HTTP_CONCURRENCY, (d) => api.version(d.id));
    pending = pending.filter((d, i) => {
      actual.set(d.id, versions[i]);
      return versions[i] < expected(d);
    });
    if (pending.length === 0 || performance.now() - start > VERIFY_MS) break;
    await sleep(200);
  }
  const mismatches: Mismatch[] = [];
  let matched = 0;
  for (const d of devices) {
    const v = actual.get(d.id)!;
    const e = expected(d);
    if (v >= e && v <= e + d.tolerance) {
      matched++;
    } else if (mismatches.length < 20) {
      mismatches.push({ id: d.id, expected: e, tolerance: d.tolerance, actual: v });
    }
  }
  const seconds = Math.round((performance.now() - start) / 10) / 100;
  return { twins: devices.length, matched, mismatches, seconds };
}
