/**
 * **memory-1m** — a million resident twins on one node: the time to load them, the node's
 * RSS with them (settled, and its peak), bytes per twin, and `GET /v1/twins/{id}` latency for
 * random twins among them while they are resident.
 *
 * A node with a long idle time (nothing is passivated) gets one telemetry message
 * `{"temp":…,"rpm":…,"ok":true}` for each of 1,000,000 twin ids `m-0` … over MQTT, from a lean
 * raw-packet loader (`mqtt_load.ts`: a few connections, a window of QoS 1 messages in flight
 * each). The load ends when every message is acknowledged, `twinmill_twins_active` is the
 * twin count and `twinmill_inbound_log_pending` is 0. Then, after a pause, `wrk --latency`
 * GETs random twins; a sample of twins is read back at version 1 (each message applied once).
 * The node's data (Deno KV: log and snapshots) is in a temp dir removed at the end.
 * @module
 */
import { type BenchRow, num, verdict } from "./report.ts";
import { findBinary, REPO_ROOT } from "../tests/harness/mod.ts";
import { cpuMeter, formatCpu, log, memMiB, readAll, sleep, spawn } from "./proc.ts";
import { metric, startBenchNode, twinVersion } from "./node.ts";
import { publishAll } from "./mqtt_load.ts";
import { runHeapProbe, waitForTwins } from "./memory.ts";

/** Parameters of the memory-1m bench. */
export interface Memory1mOptions {
  /** Distinct twins. Default 1,000,000. */
  twins?: number;
  /** MQTT connections of the loader. Default 4. */
  connections?: number;
  /** QoS 1 messages in flight per connection. Default 1000. */
  window?: number;
  /** Pause before the settled RSS reading, ms. Default 30,000. */
  settleMs?: number;
  /** Seconds of `wrk` GETs. Default 10. */
  getSeconds?: number;
}

/** RSS budget of the node with a million twins: 1.5 GB. */
const TARGET_BYTES = 1.5e9;
/** Budget per resident twin (live heap), bytes. */
const TARGET_PER_TWIN = 1000;
const MIB = 1024 * 1024;

/** Runs the memory-1m bench. */
export async function benchMemory1m(o: Memory1mOptions = {}): Promise<BenchRow> {
  const twins = o.twins ?? 1_000_000;
  const connections = o.connections ?? 4;
  const window = o.window ?? 1000;
  const settleMs = o.settleMs ?? 30_000;
  const getSeconds = o.getSeconds ?? 10;
  log(`memory-1m: starting a node with TWINMILL_IDLE_SECONDS=3600 for ${num(twins)} twins`);
  const node = await startBenchNode({ TWINMILL_IDLE_SECONDS: "3600" });
  try {
    const heapIdle = await metric(node.httpUrl, "twinmill_nodejs_heap_size_used_bytes");
    const idle = memMiB(node.pid);
    const url = new URL(node.mqttUrl!);
    const cpu = cpuMeter({ node: node.pid }, { "node main thread": node.pid });
    const t0 = performance.now();
    const load = await publishAll(url.hostname, Number(url.port), twins, (i) => ({
      topic: `twins/m-${i}/telemetry`,
      payload: `{"temp":${(15 + (i % 200) / 10).toFixed(1)},"rpm":${i % 3000},"ok":true}`,
    }), {
      connections,
      window,
      every: Math.max(10_000, Math.round(twins / 10)),
      progress: (n) => log(`memory-1m: ${num(n)} acknowledged, RSS ${rss(node.pid)}`),
    });
    if (load.acked !== twins) throw new Error(`${load.acked} of ${twins} acknowledged`);
    await waitForTwins(node.httpUrl, twins, Math.max(120_000, twins / 5));
    const secs = (performance.now() - t0) / 1000;
    const used = formatCpu(cpu.stop());
    const loaded = memMiB(node.pid);
    log(`memory-1m: ${num(twins)} twins resident after ${secs.toFixed(1)} s; settling`);
    await sleep(settleMs);
    const settled = memMiB(node.pid);
    const heap = await metric(node.httpUrl, "twinmill_nodejs_heap_size_used_bytes");
    const heapTotal = await metric(node.httpUrl, "twinmill_nodejs_heap_size_total_bytes");
    const peakLoad = memMiB(node.pid, "VmHWM");
    await checkSample(node.httpUrl, twins);
    log(`memory-1m: GET random twins for ${getSeconds} s (wrk --latency)`);
    const get = await wrkRandom(node.httpUrl, twins, getSeconds);
    const afterGet = memMiB(node.pid);
    const peak = memMiB(node.pid, "VmHWM");
    const active = await metric(node.httpUrl, "twinmill_twins_active");
    if (active !== twins) throw new Error(`${active} twins active after the GETs`);
    await node.dispose();
    const floor = await hostHeapFloor(twins);
    const perRss = (settled - idle) * MIB / twins;
    const perHeap = (heap - heapIdle) / twins;
    const bytes = settled * MIB;
    // 1.5 GB of RSS with a million twins; a smaller run is held to the idle node plus its
    // share of what the budget leaves over the idle node
    const budget = idle * MIB + (TARGET_BYTES - idle * MIB) * twins / 1_000_000;
    const met = settled * MIB <= budget && (floor ?? Infinity) <= TARGET_PER_TWIN;
    return {
      bench: "memory-1m",
      result: `${num(twins)} twins: ${num(settled, 1)} MiB RSS settled, peak ${num(peak, 1)} ` +
        `MiB; ${num(perRss)} B/twin RSS, ${floor === null ? "?" : num(floor)} B/twin live heap`,
      baseline: `${num(idle, 1)} MiB RSS (idle node)`,
      ratio: `${(settled * MIB / budget).toFixed(2)}× of budget`,
      target: verdict(
        `RSS ≤ 1.5 GB with 1M twins, live heap ≤ ${num(TARGET_PER_TWIN)} B/twin`,
        met,
      ),
      notes: [
        `load: ${num(twins)} QoS 1 messages (one per twin) from ${connections} raw MQTT ` +
        `connections × ${window} in flight, acknowledged in ${load.seconds.toFixed(1)} s; all ` +
        `twins active and the log drained after ${secs.toFixed(1)} s: ` +
        `${num(twins / secs)} twins/s; CPU ${used}.`,
        `RSS: idle ${num(idle, 1)} MiB, when loaded ${num(loaded, 1)}, ${settleMs / 1000} s ` +
        `later ${num(settled, 1)} (${(bytes / 1e9).toFixed(2)} GB), after the GETs ` +
        `${num(afterGet, 1)}; peak (VmHWM) ${num(peakLoad, 1)} MiB before the GETs, ` +
        `${num(peak, 1)} after.`,
        `V8 heap used (node's metrics, as the last GC left it): idle ${num(heapIdle / MIB, 1)} ` +
        `MiB, settled ${num(heap / MIB, 1)} of ${num(heapTotal / MIB, 1)} MiB total ` +
        `(+${num(perHeap)} B/twin); live heap after full GCs of the same twins in one ` +
        `TwinHost (\`heap_probe.ts --host-only\`): ${floor === null ? "failed" : num(floor)} ` +
        `B/twin.`,
        `GET /v1/twins/m-<random of ${num(twins)}>, wrk -t2 -c50 -d${getSeconds}s --latency: ` +
        `${num(get.rps)} req/s, latency p50 ${get.p50}, p90 ${get.p90}, p99 ${get.p99}, max ` +
        `${get.max}${get.timeouts ? `, ${num(get.timeouts)} over 10 s` : ""}; a sample of 200 ` +
        `twins read back at version 1.`,
        `load average ${Deno.loadavg().map((l) => l.toFixed(2)).join(" ")} at the end.`,
      ],
    };
  } finally {
    await node.dispose();
  }
}

/** Live heap per resident twin of a `TwinHost` with `twins` twins (`heap_probe.ts`), or null. */
async function hostHeapFloor(twins: number): Promise<number | null> {
  log(`memory-1m: live heap of ${num(twins)} twins in one TwinHost (heap_probe.ts --host-only)`);
  const r = await runHeapProbe(twins, ["--host-only"]);
  if ("failed" in r) {
    log(`memory-1m: heap probe failed (${r.failed})`);
    return null;
  }
  return r.hostBytes;
}

function rss(pid: number): string {
  return `${num(memMiB(pid), 0)} MiB`;
}

/** Reads back 200 random twins: each must be at version 1 (its one message, applied once). */
async function checkSample(httpUrl: string, twins: number): Promise<void> {
  for (let k = 0; k < 200; k++) {
    const id = `m-${Math.floor(Math.random() * twins)}`;
    const v = await twinVersion(httpUrl, id);
    if (v !== 1) throw new Error(`${id} at version ${v}, expected 1`);
  }
}

/**
 * `wrk -t2 -c50 --latency --timeout 10s` on GET of random twins `m-0` … `m-<twins-1>`. Any
 * non-2xx or socket error fails, except timeouts (a GET over 10 s), which are counted.
 */
async function wrkRandom(
  httpUrl: string,
  twins: number,
  secs: number,
): Promise<{ rps: number; p50: string; p90: string; p99: string; max: string; timeouts: number }> {
  const script = await Deno.makeTempFile({ prefix: "twinmill-wrk-", suffix: ".lua" });
  await Deno.writeTextFile(
    script,
    // each wrk thread seeds its own generator (a table's address differs per Lua state)
    `math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))\n` +
      `request = function()\n` +
      `  return wrk.format("GET", "/v1/twins/m-" .. math.random(0, ${twins - 1}))\nend\n`,
  );
  try {
    const p = spawn(
      findBinary("wrk", "wrk"),
      ["-t2", "-c50", `-d${secs}s`, "--latency", "--timeout", "10s", "-s", script, httpUrl],
      { stdout: "piped", cwd: REPO_ROOT },
    );
    const [status, out] = await Promise.all([p.status, readAll(p.child.stdout)]);
    if (status.code !== 0) throw new Error(`wrk exited with code ${status.code}: ${out}`);
    const socket = out.match(
      /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/,
    );
    const non2xx = out.match(/Non-2xx or 3xx responses: \d+/);
    if (non2xx || (socket && socket.slice(1, 4).some((n) => n !== "0"))) {
      throw new Error(`wrk: ${non2xx?.[0] ?? socket?.[0]}\n${out}`);
    }
    const rps = out.match(/Requests\/sec:\s+([\d.]+)/);
    const pct = (p: string) => out.match(new RegExp(`^\\s+${p}%\\s+(\\S+)`, "m"))?.[1] ?? "?";
    if (!rps) throw new Error(`Cannot parse wrk output:\n${out}`);
    const max = out.match(/Latency\s+\S+\s+\S+\s+(\S+)/)?.[1] ?? "?";
    const timeouts = Number(socket?.[4] ?? 0);
    return { rps: Number(rps[1]), p50: pct("50"), p90: pct("90"), p99: pct("99"), max, timeouts };
  } finally {
    await Deno.remove(script).catch(() => {});
  }
}
