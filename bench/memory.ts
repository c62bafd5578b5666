/**
 * **memory** — resident memory of 100,000 active twins with a few reported fields each.
 *
 * A node with a long idle time (nothing is passivated) gets one telemetry message
 * `{"temp":…,"rpm":…,"ok":true}` for each of 100k twin ids over MQTT (npm:mqtt, a few
 * clients with a bounded number of QoS 1 messages in flight). Its RSS (`VmRSS`) is read
 * when idle and again once `twinmill_twins_active` is 100k and `twinmill_inbound_log_pending`
 * is 0; the result is the difference.
 * @module
 */
import mqtt from "mqtt";
import { type BenchRow, num, verdict } from "./report.ts";
import { REPO_ROOT } from "../tests/harness/mod.ts";
import { cpuMeter, formatCpu, log, memMiB, readAll, sleep, spawn } from "./proc.ts";
import { metric, startBenchNode } from "./node.ts";

/** Parameters of the memory bench. */
export interface MemoryOptions {
  /** Distinct twins. Default 100 000. */
  twins?: number;
  /** MQTT clients. Default 4. */
  clients?: number;
  /** QoS 1 messages in flight per client. Default 500. */
  inflight?: number;
  /** Pause before the final RSS reading, ms. Default 30,000 (env `BENCH_SETTLE_MS`). */
  settleMs?: number;
}

/** Budget for 100k twins, MiB over idle. */
const TARGET_MIB = 300;
/** Pause before the final RSS reading, so that short-lived garbage can be collected. */
const SETTLE_MS = Number(Deno.env.get("BENCH_SETTLE_MS") ?? 30_000);

/** Runs the memory bench. */
export async function benchMemory(o: MemoryOptions = {}): Promise<BenchRow> {
  const twins = o.twins ?? 100_000;
  const clients = o.clients ?? 4;
  const inflight = o.inflight ?? 500;
  const settleMs = o.settleMs ?? SETTLE_MS;
  log("memory: starting a node with TWINMILL_IDLE_SECONDS=3600");
  const node = await startBenchNode({ TWINMILL_IDLE_SECONDS: "3600" });
  try {
    const heapIdle = await heapMiB(node.httpUrl);
    const idle = memMiB(node.pid);
    log(`memory: idle RSS ${idle.toFixed(1)} MiB; publishing to ${num(twins)} twins`);
    const cpu = cpuMeter({ node: node.pid }, { "node main thread": node.pid });
    const t0 = performance.now();
    await publishToTwins(node.mqttUrl!, twins, clients, inflight);
    const pubSecs = (performance.now() - t0) / 1000;
    log(`memory: all ${num(twins)} acknowledged after ${pubSecs.toFixed(1)} s; waiting for twins`);
    await waitForTwins(node.httpUrl, twins);
    const secs = (performance.now() - t0) / 1000;
    const used = formatCpu(cpu.stop());
    const loaded = memMiB(node.pid);
    await sleep(settleMs);
    const settled = memMiB(node.pid);
    const peak = memMiB(node.pid, "VmHWM");
    const heap = await heapMiB(node.httpUrl);
    await node.dispose();
    const floor = await heapProbe(twins);
    const over = settled - idle;
    const scaled = over * 100_000 / twins;
    log(`memory: RSS ${settled.toFixed(1)} MiB (+${over.toFixed(1)} MiB over idle)`);
    return {
      bench: "memory",
      result: `+${num(over, 1)} MiB RSS for ${num(twins)} twins ` +
        `(${num(over * 1024 * 1024 / twins)} B/twin)`,
      baseline: `${num(idle, 1)} MiB RSS (idle node)`,
      ratio: `${(scaled / TARGET_MIB).toFixed(2)}× of budget`,
      target: verdict(`≤ ${TARGET_MIB} MiB per 100k`, scaled <= TARGET_MIB),
      notes: [
        `${num(twins)} twins, one telemetry message each, from ${clients} npm:mqtt clients ` +
        `with ≤ ${inflight} QoS 1 messages in flight each: acknowledged in ` +
        `${pubSecs.toFixed(1)} s, all twins active and log drained after ${secs.toFixed(1)} s ` +
        `(${num(twins / secs)} twins/s); CPU ${used}.`,
        `RSS right when drained ${num(loaded, 1)} MiB, ${settleMs / 1000} s later ` +
        `${num(settled, 1)} MiB (reported), peak (VmHWM) ${num(peak, 1)} MiB.`,
        `V8 heap used/total (node's own metrics): idle ${heapIdle.used.toFixed(1)}/` +
        `${heapIdle.total.toFixed(1)} MiB, with the twins ${heap.used.toFixed(1)}/` +
        `${heap.total.toFixed(1)} MiB (+${num(heap.used - heapIdle.used, 1)} MiB used: ` +
        `${num((heap.used - heapIdle.used) * 1024 * 1024 / twins)} B/twin); the rest of the ` +
        `RSS growth is outside the JS heap or free heap pages.`,
        floor,
      ],
    };
  } finally {
    await node.dispose();
  }
}

/** Publishes `{"temp","rpm","ok"}` once to each of `twins` ids; resolves when all are acked. */
async function publishToTwins(
  url: string,
  twins: number,
  clients: number,
  inflight: number,
): Promise<void> {
  const conns = await Promise.all(
    Array.from({ length: clients }, (_, c) =>
      mqtt.connectAsync(url, {
        clientId: `bench-memory-${c}`,
        reconnectPeriod: 0,
        clean: true,
      })),
  );
  try {
    let next = 0;
    let acked = 0;
    const worker = async (client: mqtt.MqttClient) => {
      for (let i = next++; i < twins; i = next++) {
        const body = `{"temp":${(15 + (i % 200) / 10).toFixed(1)},"rpm":${i % 3000},"ok":true}`;
        await client.publishAsync(`twins/m-${i}/telemetry`, body, { qos: 1 });
        if (++acked % 25_000 === 0) log(`memory: ${num(acked)} acknowledged`);
      }
    };
    await Promise.all(
      conns.flatMap((client) => Array.from({ length: inflight }, () => worker(client))),
    );
  } finally {
    await Promise.all(conns.map((c) => c.endAsync()));
  }
}

/** What `bench/heap_probe.ts` prints: live heap per twin, bytes (`--host-only`: hostBytes). */
export interface HeapFloor {
  recordBytes: number;
  actorBytes: number;
  hostBytes: number;
}

/**
 * Runs `bench/heap_probe.ts` for `twins` twins in a subprocess (more `args`, e.g.
 * `--host-only`); its figures, or why it failed.
 */
export async function runHeapProbe(
  twins: number,
  args: string[] = [],
): Promise<HeapFloor | { failed: string }> {
  const p = spawn(
    Deno.execPath(),
    ["run", "-A", "--v8-flags=--expose-gc", "bench/heap_probe.ts", String(twins), ...args],
    { cwd: REPO_ROOT, stdout: "piped" },
  );
  const [status, out, err] = await Promise.all([
    p.status,
    readAll(p.child.stdout),
    readAll(p.child.stderr),
  ]);
  if (status.code !== 0) return { failed: `code ${status.code}: ${err.split("\n")[0]}` };
  return JSON.parse(out) as HeapFloor;
}

/** Runs the heap probe; returns a note (also when it fails). */
async function heapProbe(twins: number): Promise<string> {
  log("memory: measuring live heap per twin in-process (bench/heap_probe.ts)");
  const r = await runHeapProbe(twins);
  if ("failed" in r) return `heap probe failed (${r.failed})`;
  const mib = r.hostBytes * twins / 1024 / 1024;
  return `live heap floor after full GC (bench/heap_probe.ts, same twins in one process): ` +
    `${num(r.recordBytes)} B/twin for the record alone, ${num(r.actorBytes)} B/twin as a ` +
    `resident actor, ${num(r.hostBytes)} B/twin as a resident twin of a TwinHost ` +
    `(${num(mib, 1)} MiB for ${num(twins)}).`;
}

/** V8 heap used and total (MiB) as the node's `/metrics` reports them. */
async function heapMiB(httpUrl: string): Promise<{ used: number; total: number }> {
  const used = await metric(httpUrl, "twinmill_nodejs_heap_size_used_bytes");
  const total = await metric(httpUrl, "twinmill_nodejs_heap_size_total_bytes");
  return { used: used / 1024 / 1024, total: total / 1024 / 1024 };
}

/**
 * Polls `/metrics` until `twins` twins are active and the inbound log is drained; throws after
 * `ms` or when more twins are active.
 */
export async function waitForTwins(httpUrl: string, twins: number, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const active = await metric(httpUrl, "twinmill_twins_active");
    const pending = await metric(httpUrl, "twinmill_inbound_log_pending");
    if (active === twins && pending === 0) return;
    if (active > twins) throw new Error(`${active} twins active, expected ${twins}`);
    if (Date.now() > deadline) {
      throw new Error(
        `After ${ms / 1000} s: ${active} of ${twins} twins active, ${pending} pending`,
      );
    }
    await sleep(100);
  }
}
