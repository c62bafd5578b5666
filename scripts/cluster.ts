/**
 * `deno task cluster`: a local 3-server NATS JetStream cluster and 3 twinmill nodes on free
 * loopback ports — the five-minute way to see cluster mode. Prints every address; Ctrl-C
 * stops everything. Uses the test harness, which starts real `nats-server` processes.
 * @module
 */
import { type NodeProcess, startNatsCluster, startNode } from "../tests/harness/mod.ts";

const nodes = Number(Deno.args[0] ?? 3);
console.log("starting a 3-server NATS JetStream cluster ...");
const nats = await startNatsCluster(3);
for (const s of nats.servers) console.log(`  nats ${s.name}: ${s.url}`);
const running: NodeProcess[] = [];
for (let i = 1; i <= nodes; i++) {
  const n = await startNode({ NATS_URL: nats.urls, TWINMILL_NODE_ID: `node-${i}` });
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
console.log("Warnings and errors of the nodes follow (HARNESS_VERBOSE=1 shows every line).\n");

// the nodes' warnings and errors, as they come (their full logs stay in the harness)
const seen = running.map(() => 0);
const watch = setInterval(() => {
  running.forEach((n, i) => {
    for (const line of n.logs.slice(seen[i])) {
      if (/"level":"(warn|error)"/.test(line)) console.error(`node-${i + 1}: ${line}`);
    }
    seen[i] = n.logs.length;
  });
}, 500);

const stop = async () => {
  console.log("\nstopping ...");
  clearInterval(watch);
  for (const n of running.reverse()) await n[Symbol.asyncDispose]();
  await nats[Symbol.asyncDispose]();
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
