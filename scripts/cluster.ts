/**
 * `deno task cluster`: a local 3-server NATS JetStream cluster and 3 twinmill nodes on free
 * loopback ports — the five-minute way to see cluster mode. Prints every address; Ctrl-C
 * stops everything. Uses the test harness, which starts real `nats-server` processes. Each
 * node's log (JSON lines) goes to `node-{n}.log` in the working directory (the repository root
 * under `deno task`), replaced at every run; warnings and errors are also printed.
 * `TWINMILL_LOG` is passed on to the nodes.
 * @module
 */
import { type NodeProcess, startNatsCluster, startNode } from "../tests/harness/mod.ts";

const nodes = Number(Deno.args[0] ?? 3);
/** `TWINMILL_LOG` of this shell, passed to every node (default: info). */
const logLevel = Deno.env.get("TWINMILL_LOG");
console.log("starting a 3-server NATS JetStream cluster ...");
const nats = await startNatsCluster(3);
for (const s of nats.servers) console.log(`  nats ${s.name}: ${s.url}`);
const running: NodeProcess[] = [];
for (let i = 1; i <= nodes; i++) {
  const n = await startNode({
    NATS_URL: nats.urls,
    TWINMILL_NODE_ID: `node-${i}`,
    ...(logLevel ? { TWINMILL_LOG: logLevel } : {}),
  });
  running.push(n);
  console.log(`  twinmill node-${i}: http ${n.httpUrl}  mqtt ${n.mqttUrl}`);
}
console.log(
  `\ntry:\n  mosquitto_pub -p ${
    running[0].mqttPort
  } -q 1 -t twins/press-7/telemetry -m '{"temp":21}'`,
);
console.log(`  curl -s ${running.at(-1)!.httpUrl}/v1/twins/press-7`);
console.log(`  curl -s ${running[0].httpUrl}/v1/cluster\n\nCtrl-C stops everything.`);
const logFiles = running.map((_, i) => `${Deno.cwd()}/node-${i + 1}.log`);
console.log(`Logs: ${logFiles.join(", ")}`);
console.log("Warnings and errors of the nodes follow (HARNESS_VERBOSE=1 shows every line).\n");

// every line of each node's log to its file; warnings and errors also here, as they come
for (const f of logFiles) Deno.writeTextFileSync(f, "");
const seen = running.map(() => 0);
const flushLogs = () => {
  running.forEach((n, i) => {
    const lines = n.logs.slice(seen[i]);
    seen[i] += lines.length;
    if (lines.length === 0) return;
    Deno.writeTextFileSync(logFiles[i], lines.join("\n") + "\n", { append: true });
    for (const line of lines) {
      if (/"level":"(warn|error)"/.test(line)) console.error(`node-${i + 1}: ${line}`);
    }
  });
};
const watch = setInterval(flushLogs, 500);

const stop = async () => {
  console.log("\nstopping ...");
  clearInterval(watch);
  for (const n of [...running].reverse()) await n[Symbol.asyncDispose]();
  flushLogs(); // the nodes' last lines
  await nats[Symbol.asyncDispose]();
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
