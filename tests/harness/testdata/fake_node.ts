/**
 * A stand-in for twinmill's main.ts that the harness's own tests run: logs JSON lines
 * on stderr like the node, serves HTTP (the body is how often it started on this data
 * dir), and exits 0 on SIGTERM. `FAKE_EXIT=<code>` makes it fail before `ready`;
 * `FAKE_NO_MQTT=1` leaves out `mqttPort`.
 *
 * @module
 */

const encoder = new TextEncoder();

function log(level: string, msg: string, extra: Record<string, unknown> = {}): void {
  const rec = { ts: new Date().toISOString(), level, mod: "twinmill", msg, ...extra };
  Deno.stderr.writeSync(encoder.encode(JSON.stringify(rec) + "\n"));
}

const exitCode = Deno.env.get("FAKE_EXIT");
if (exitCode !== undefined) {
  log("error", "Cannot start: FAKE_EXIT is set", { args: Deno.args });
  Deno.exit(Number(exitCode));
}

const dataDir = Deno.env.get("TWINMILL_DATA_DIR")!;
const countFile = `${dataDir}/starts`;
let starts = 1;
try {
  starts += Number(await Deno.readTextFile(countFile));
} catch {
  // first start on this data dir
}
await Deno.writeTextFile(countFile, String(starts));

const server = Deno.serve({
  hostname: "127.0.0.1",
  port: Number(Deno.env.get("TWINMILL_HTTP_PORT")),
  onListen: () => {},
}, () => new Response(String(starts)));
const mqtt = Deno.env.get("FAKE_NO_MQTT") === "1"
  ? undefined
  : Deno.listen({ hostname: "127.0.0.1", port: Number(Deno.env.get("TWINMILL_MQTT_PORT")) });

Deno.addSignalListener("SIGTERM", async () => {
  log("info", "stopping");
  mqtt?.close();
  await server.shutdown();
  Deno.exit(0);
});

log("info", "starting", { starts });
log("info", "ready", {
  httpPort: server.addr.port,
  ...(mqtt ? { mqttPort: (mqtt.addr as Deno.NetAddr).port } : {}),
});
