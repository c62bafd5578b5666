/**
 * `deno task simulate` against a real node, as an operator would run it: 20 devices for a few
 * seconds with every fault on (overheat, stuck sensors, dropouts, a reconnect storm, malformed
 * messages), QoS 1. Every message must be acknowledged, and every acknowledged change applied:
 * each twin's version is what the simulator sent it (its own `--verify`), the versions of all
 * twins add up to the acknowledged changes (read here over HTTP), and the node rejected exactly
 * the malformed messages. Then against a node with device authentication on and API keys:
 * `--auth` connects every device with its own token and revokes it afterwards; without `--auth`
 * the run fails with one clear line.
 */
import assert from "node:assert/strict";
import { getJson, metric, type NodeProcess, REPO_ROOT, startNode } from "../harness/mod.ts";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function simulate(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "simulate", ...args],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

// deno-lint-ignore no-explicit-any
function summaryOf(r: Run): any {
  try {
    return JSON.parse(r.stdout);
  } catch {
    throw new Error(
      `no JSON summary (exit ${r.code})\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`,
    );
  }
}

// deno-lint-ignore no-explicit-any
async function twins(node: NodeProcess, headers: HeadersInit = {}): Promise<any[]> {
  const r = await getJson(`${node.httpUrl}/v1/twins?limit=1000`, { headers });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.items;
}

const FAULTS = "overheat=6:2,stuck=6:2,dropout=4:1,storm=2:0.3,malformed=0.03";

Deno.test("simulate: 20 devices, every fault, every acknowledged message applied", async () => {
  await using node = await startNode();
  const r = await simulate([
    ...["--devices", "20", "--rate", "120", "--duration", "4", "--seed", "7"],
    ...["--sites", "2", "--lines", "2", "--faults", FAULTS],
    ...["--mqtt", node.mqttUrl!, "--http", node.httpUrl, "--verify", "--json"],
  ]);
  const s = summaryOf(r);
  assert.equal(r.code, 0, `exit code\n${r.stderr}\n${r.stdout}`);
  assert.equal(s.ok, true);
  assert.ok(s.sent >= 350, `sent ${s.sent}`);
  assert.equal(s.acked, s.sent, "every QoS 1 message acknowledged");
  assert.equal(s.failed + s.unacked + s.unexpectedDisconnects, 0);
  assert.ok(s.achievedRate > 80 && s.achievedRate < 130, `rate ${s.achievedRate}`);
  assert.ok(s.latencyMs.p50 > 0 && s.latencyMs.p99 >= s.latencyMs.p50);
  assert.ok(s.latencyMs.max >= s.latencyMs.p99);
  // the faults happened
  assert.ok(s.faults.overheat >= 1 && s.faults.stuck >= 1, JSON.stringify(s.faults));
  assert.ok(s.faults.dropout >= 1 && s.faults.storms >= 1, JSON.stringify(s.faults));
  assert.equal(s.wills, s.faults.dropout + s.faults.stormDevices, "one will per dropped link");
  assert.ok(s.reconnects >= s.faults.stormDevices, "storm devices came back");
  assert.ok(s.rejected >= 1 && s.messages.malformed === s.rejected);
  // the simulator's own check: every twin's version is what it sent that twin
  assert.deepEqual(s.verify.mismatches, []);
  assert.equal(s.verify.matched, 20);

  // and ours, over HTTP: the versions add up to what was acknowledged (and nothing more)
  const all = await twins(node);
  assert.equal(all.length, 20);
  const changes = s.acked - s.rejected + s.wills; // telemetry, reported, status, wills
  const provisioned = all.length; // one version each for PUT /v1/twins/{id}
  assert.equal(all.reduce((n, t) => n + t.version, 0), provisioned + changes);
  assert.equal(await metric(node, "twinmill_mqtt_messages_rejected_total"), s.rejected);
  for (const t of all) {
    assert.match(t.id, /^[AB]-L[12]-(press|conveyor|cnc|env)-\d{3}$/);
    assert.equal(t.attributes.type, t.id.split("-")[2]);
    assert.ok(t.attributes.site && t.attributes.line && t.attributes.model && t.attributes.vendor);
    assert.equal(t.connectivity.status, "offline", `${t.id} said offline or left its will`);
    assert.ok(typeof t.reported.serial === "string" && typeof t.reported.mode === "string");
  }
  const press = all.find((t) => t.attributes.type === "press")!;
  for (const f of ["temp", "pressure", "strokes", "vibration"]) {
    assert.equal(typeof press.reported[f], "number", `press ${f}`);
  }

  // a bad flag: one line, exit code 2, nothing sent
  const bad = await simulate(["--devices", "many"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /simulate: --devices: expected an integer from 1 to 100000, got "many"/);
});

Deno.test("simulate --auth: device tokens against a node with device authentication on", async () => {
  const key = "sim-admin-key-0123456789";
  await using node = await startNode({
    TWINMILL_MQTT_AUTH: "on",
    TWINMILL_API_KEYS: `${key}:admin`,
  });
  const common = [
    ...["--devices", "12", "--rate", "100", "--duration", "3", "--prefix", "auth-"],
    ...["--mqtt", node.mqttUrl!, "--http", node.httpUrl, "--json"],
  ];
  const r = await simulate(
    [...common, "--auth", "--verify", "--faults", "storm=1:0.5,dropout=6:0.5"],
    { TWINMILL_API_KEY: key },
  );
  const s = summaryOf(r);
  assert.equal(r.code, 0, `exit code\n${r.stderr}\n${r.stdout}`);
  assert.equal(s.acked, s.sent);
  assert.ok(s.faults.storms >= 1, JSON.stringify(s.faults));
  assert.ok(s.reconnects >= 1, "reconnected with their tokens");
  assert.equal(s.verify.matched, 12, JSON.stringify(s.verify.mismatches));
  assert.ok(
    (await metric(node, "twinmill_mqtt_auth_failures_total").catch(() => 0)) === 0,
    "no device was refused",
  );
  const auth = { authorization: `Bearer ${key}` };
  const all = await twins(node, auth);
  assert.equal(all.length, 12);
  for (const t of all) {
    const creds = await getJson(`${node.httpUrl}/v1/twins/${t.id}/credentials`, { headers: auth });
    assert.equal(creds.status, 200);
    assert.deepEqual(creds.body.items, [], `${t.id}: the run's token was revoked`);
  }
  assert.ok(!r.stderr.includes(key), "the API key is never printed");

  // without --auth the devices are refused: one clear line, exit code 1
  const refused = await simulate([...common, "--faults", "none"], { TWINMILL_API_KEY: key });
  assert.equal(refused.code, 1);
  assert.match(
    refused.stderr,
    /simulate: Cannot connect device "auth-[AB]-L\d-\w+-\d{3}" to mqtt:\/\/127\.0\.0\.1:\d+: .*Bad username or password/,
  );
  // without the API key, provisioning is refused
  const anon = await simulate([...common, "--faults", "none"]);
  assert.equal(anon.code, 1);
  assert.match(
    anon.stderr,
    /simulate: PUT \/v1\/twins\/auth-[AB]-L\d-\w+-\d{3} -> 401 unauthorized/,
  );
});
