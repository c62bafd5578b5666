/**
 * **http** — `GET /v1/twins/{id}` throughput of a node against a Hono hello-world on
 * `Deno.serve` (`bench/hello_server.ts`), both as subprocesses, both loaded by
 * `wrk -t2 -c50 -d10s` after a short warm-up, in interleaved rounds (so that a burst of other
 * load on the machine hits both sides alike).
 * @module
 */
import { REPO_ROOT } from "../tests/harness/mod.ts";
import { type BenchRow, num, verdict } from "./report.ts";
import { wrk, type WrkResult } from "./wrk.ts";
import { type Child, cpuMeter, formatCpu, log, readAll, spawn } from "./proc.ts";
import { publishOne } from "./mosquitto.ts";
import { mqttPort, startBenchNode, waitForVersions } from "./node.ts";
import { median } from "./publishers.ts";

/** Parameters of the http bench. */
export interface HttpOptions {
  /** wrk duration of each measured run, seconds. Default 10. */
  seconds?: number;
  /** wrk duration of each warm-up, seconds. Default 2. */
  warmupSeconds?: number;
  /** Interleaved baseline/node rounds; the medians are reported. Default 3. */
  rounds?: number;
}

/** Ratio of node to baseline throughput required (issue 16). */
const TARGET = 0.6;

/** Runs the http bench. */
export async function benchHttp(o: HttpOptions = {}): Promise<BenchRow> {
  const secs = o.seconds ?? 10;
  const warm = o.warmupSeconds ?? 2;
  const rounds = o.rounds ?? 3;

  log("http: starting bench/hello_server.ts and a node");
  const hello = await startHello();
  const node = await startBenchNode();
  const bases: Measured[] = [];
  const twins: Measured[] = [];
  try {
    await publishOne(mqttPort(node), "twins/dev-1/telemetry", '{"temp":21.5,"rpm":1200}');
    await waitForVersions(node.httpUrl, ["dev-1"], 1, 10_000);
    const targets = {
      baseline: { url: `http://127.0.0.1:${hello.port}/`, pid: hello.child.pid },
      node: { url: `${node.httpUrl}/v1/twins/dev-1`, pid: node.pid },
    };
    for (const [what, t] of Object.entries(targets)) {
      log(`http: ${what} warm-up (${warm} s)`);
      await wrk(t.url, warm);
    }
    for (let r = 1; r <= rounds; r++) {
      bases.push(await load(`baseline, round ${r}/${rounds}`, targets.baseline, secs));
      twins.push(await load(`node, round ${r}/${rounds}`, targets.node, secs));
    }
  } finally {
    await node.dispose();
    await hello.child.kill();
  }

  const base = median(bases, (r) => r.rps);
  const twin = median(twins, (r) => r.rps);
  const ratio = twin.rps / base.rps;
  const all = (runs: Measured[]) => runs.map((x) => num(x.rps)).join(", ");
  return {
    bench: "http",
    result: `${num(twin.rps)} req/s (node, GET /v1/twins/dev-1)`,
    baseline: `${num(base.rps)} req/s (Hono hello on Deno.serve)`,
    ratio: `${ratio.toFixed(2)}×`,
    target: verdict(`≥ ${TARGET}×`, ratio >= TARGET),
    notes: [
      `\`wrk -t2 -c50 -d${secs}s\` after a ${warm} s warm-up of each server; ${rounds} ` +
      `interleaved rounds, medians reported (baseline ${all(bases)}; node ${all(twins)} ` +
      `req/s); wrk runs on the same 2 cores.`,
      `baseline (median round): latency ${base.latency}; CPU ${base.cpu}.`,
      `node (median round): latency ${twin.latency}; CPU ${twin.cpu}.`,
    ],
  };
}

type Measured = WrkResult & { cpu: string };

/** A measured wrk run with the server's CPU use. */
async function load(
  what: string,
  target: { url: string; pid: number },
  secs: number,
): Promise<Measured> {
  log(`http: ${what} (wrk -t2 -c50 -d${secs}s ${target.url})`);
  const cpu = cpuMeter({ server: target.pid }, { "server main thread": target.pid });
  const r = await wrk(target.url, secs);
  const used = formatCpu(cpu.stop());
  log(`http: ${what}: ${num(r.rps)} req/s, latency ${r.latency} (${used})`);
  return { ...r, cpu: used };
}

/** Starts the hello server; resolves with its port once it listens. */
async function startHello(): Promise<{ child: Child; port: number }> {
  const child = spawn(
    Deno.execPath(),
    ["run", "--allow-net", "bench/hello_server.ts", "0"],
    { cwd: REPO_ROOT, stdout: "piped" },
  );
  const reader = child.child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  const timer = setTimeout(() => void child.kill(), 30_000);
  try {
    while (!out.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) {
        const err = await readAll(child.child.stderr);
        throw new Error(`bench/hello_server.ts exited before listening: ${err.trim()}`);
      }
      out += value;
    }
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
  void child.child.stdout.cancel().catch(() => {});
  void readAll(child.child.stderr);
  const port = Number(out.trim());
  if (!Number.isInteger(port) || port <= 0) throw new Error(`hello_server printed "${out}"`);
  return { child, port };
}
