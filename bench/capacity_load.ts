/**
 * The capacity bench's paced device load and its CPU accounting: `factory_gen.c` devices (raw
 * MQTT 3.1.1, QoS 1, one message a second each, staggered over the second) spread over one or
 * more nodes' MQTT ports, with the CPU-seconds (`utime + stime` of `/proc/<pid>/stat`) of the
 * measured processes read in three phases: idle (nothing connected), connected and silent,
 * and publishing. CPU-seconds over a known number of messages stay meaningful on a loaded
 * machine, where throughput does not.
 * @module
 */
import { cpuSeconds, log, memMiB, sleep } from "./proc.ts";
import { type Generator, type GeneratorResult, type Ready, startGenerator } from "./factory_gen.ts";

/** The offered load. */
export interface PacedLoad {
  /** Devices, one twin `fac-k` each, split evenly over the ports. */
  devices: number;
  /** Messages per device, one a second. */
  seconds: number;
  /** Seconds of each idle reading (nothing connected; connected and silent). */
  idleSeconds: number;
  /** New connections per second, all generators together. */
  connectRate?: number;
}

/** CPU-seconds per process name over one phase, and the phase's wall time. */
export interface Phase {
  wall: number;
  cpu: Record<string, number>;
}

/** What a paced run measured. */
export interface PacedResult {
  connected: number;
  sent: number;
  acked: number;
  /** Nothing connected. */
  idle: Phase;
  /** Every device connected, none publishing. */
  silent: Phase;
  /** From the start time until the last PUBACK. */
  busy: Phase;
  /** RSS (MiB) of the processes in `rss`: idle, connected, after publishing. */
  rss: Record<string, { idle: number; connected: number; after: number }>;
}

/** CPU-seconds so far of each pid; a `main:` prefixed name reads the main thread only. */
function snapshot(pids: Record<string, number>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid, k.startsWith("main:"))]),
  );
}

/** Measures `pids` from now until `stop()`. */
export function phase(pids: Record<string, number>): { stop(): Phase } {
  const t0 = performance.now();
  const c0 = snapshot(pids);
  return {
    stop() {
      const c1 = snapshot(pids);
      const cpu = Object.fromEntries(Object.keys(pids).map((k) => [k, c1[k] - c0[k]]));
      return { wall: (performance.now() - t0) / 1000, cpu };
    },
  };
}

/** Sum of a phase's CPU-seconds over names that pass `keep` (main-thread readings excluded). */
export function cpuOf(p: Phase, keep: (name: string) => boolean = () => true): number {
  return Object.entries(p.cpu)
    .filter(([k]) => !k.startsWith("main:") && keep(k))
    .reduce((a, [, v]) => a + v, 0);
}

/**
 * Runs `load` against `ports` with generator binary `bin` (`compileGenerator`), measuring
 * `pids` (CPU) and `rssPids` (memory); the generators' own CPU is not counted. The busy phase
 * ends once every PUBACK is in and `drained` has resolved (the servers' work done).
 */
export async function pacedLoad(
  bin: string,
  ports: number[],
  load: PacedLoad,
  pids: Record<string, number>,
  rssPids: Record<string, number>,
  label: string,
  drained: () => Promise<void> = () => Promise.resolve(),
): Promise<PacedResult> {
  const rssNow = () => Object.fromEntries(Object.entries(rssPids).map(([k, p]) => [k, memMiB(p)]));
  const idleRss = rssNow();
  const idle = phase(pids);
  await sleep(load.idleSeconds * 1000);
  const idlePhase = idle.stop();
  const gens: Generator[] = ports.map((port, i) => {
    const first = Math.round(i * load.devices / ports.length);
    const count = Math.round((i + 1) * load.devices / ports.length) - first;
    return startGenerator(bin, {
      host: "127.0.0.1",
      port,
      first,
      count,
      total: load.devices,
      seconds: load.seconds,
      connectRate: (load.connectRate ?? 1000) / ports.length,
      drainMs: 15_000,
    }, `${label} generator ${i + 1}`);
  });
  try {
    const ready = await Promise.all(gens.map(async (g) => JSON.parse(await g.next()) as Ready));
    const connected = ready.reduce((a, r) => a + r.connected, 0);
    if (connected !== load.devices) {
      throw new Error(`${label}: ${connected} of ${load.devices} devices connected`);
    }
    await sleep(1000); // the last CONNACKs' work done
    const connectedRss = rssNow();
    const silent = phase(pids);
    await sleep(load.idleSeconds * 1000);
    const silentPhase = silent.stop();
    const startAt = Date.now() + 200;
    const stdins = gens.map((g) => g.p.child.stdin.getWriter());
    await Promise.all(stdins.map((w) => w.write(new TextEncoder().encode(`${startAt}\n`))));
    await sleep(startAt - Date.now());
    const busy = phase(pids);
    const results = await Promise.all(
      gens.map(async (g) => JSON.parse(await g.next()) as GeneratorResult),
    );
    await drained();
    const busyPhase = busy.stop();
    const after = rssNow();
    await Promise.all(stdins.map((w) => w.close()));
    for (const g of gens) {
      const { code } = await g.p.status;
      if (code !== 0) throw new Error(`${label}: generator exited ${code}: ${g.errors.join("; ")}`);
    }
    const sent = results.reduce((a, r) => a + r.sent, 0);
    const acked = results.reduce((a, r) => a + r.acked, 0);
    log(
      `${label}: ${acked} of ${sent} acked in ${busyPhase.wall.toFixed(1)} s; busy CPU-s ` +
        Object.entries(busyPhase.cpu).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", "),
    );
    const rss = Object.fromEntries(
      Object.keys(rssPids).map((k) => [k, {
        idle: idleRss[k],
        connected: connectedRss[k],
        after: after[k],
      }]),
    );
    return { connected, sent, acked, idle: idlePhase, silent: silentPhase, busy: busyPhase, rss };
  } finally {
    await Promise.all(gens.map((g) => g.p.kill()));
  }
}
