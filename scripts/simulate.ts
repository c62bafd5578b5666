/**
 * `deno task simulate`: a factory sending telemetry over MQTT to a node or a cluster — see
 * `--help` and the README's "Factory simulator". Progress on stderr, the summary on stdout.
 * Exit code 0 when every QoS 1 message was acknowledged (and `--verify` found every twin
 * exact), 1 otherwise, 2 for bad options. Ctrl-C stops sending and still prints the summary.
 * @module
 */
import { formatSummary, parseOptions, simulate, USAGE, UsageError } from "../src/sim/mod.ts";

let options;
try {
  options = parseOptions(Deno.args, Deno.env.toObject());
} catch (err) {
  if (!(err instanceof UsageError)) throw err;
  console.error(`simulate: ${err.message}`);
  Deno.exit(2);
}
if (options === "help") {
  console.log(USAGE);
  Deno.exit(0);
}

const stop = new AbortController();
let interrupts = 0;
const onSignal = () => {
  if (++interrupts > 1) Deno.exit(130); // a second Ctrl-C: now
  console.error("\nstopping (Ctrl-C again to quit at once)");
  stop.abort();
};
Deno.addSignalListener("SIGINT", onSignal);
Deno.addSignalListener("SIGTERM", onSignal);

try {
  const summary = await simulate(options, { signal: stop.signal });
  console.log(options.json ? JSON.stringify(summary) : formatSummary(summary));
  Deno.exit(summary.ok ? 0 : 1);
} catch (err) {
  console.error(`simulate: ${err instanceof Error ? err.message : String(err)}`);
  Deno.exit(1);
}
