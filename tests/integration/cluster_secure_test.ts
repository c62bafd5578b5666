/**
 * The secured backbone, server side, as the compose setup ships it: 3 NATS servers whose routes
 * log in (user `route`) over TLS both ways, clients over TLS as users of the generated account
 * (`renderAuthConf`), certificates made by `scripts/make_certs.sh`. Nodes logged in as `node`
 * keep cluster mode's exactly-once guarantee through a node crash and a NATS server restart;
 * an anonymous client cannot even connect (so cannot publish into the inbound stream nor read the
 * snapshot bucket); the `tools` user reads snapshots but cannot publish into the inbound stream;
 * a node whose user lacks one permission exits at once, naming it.
 */
import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import {
  findBinary,
  type NodeProcess,
  REPO_ROOT,
  runNode,
  startNats,
  startNatsCluster,
  startNode,
  waitFor,
} from "../harness/mod.ts";
import { nodeUserWithout } from "../harness/nats_users.ts";
import { ServerProcess } from "../harness/process.ts";
import { renderAuthConf } from "../../src/cluster/permission_list.ts";
import { assertExact, deviceTraffic } from "../harness/cluster_traffic.ts";
import { ignoreDiscardedSockets } from "../harness/discarded_sockets.ts";

// refused connections below: see tests/harness/discarded_sockets.ts
ignoreDiscardedSockets();

const NODE_PW = "nodePw4secureBackbone";
const TOOLS_PW = "toolsPw4secureBackbone";
const ROUTE_PW = "routePw4secureBackbone";

/** A temp dir with the certificates of `scripts/make_certs.sh` (127.0.0.1 among their names). */
async function makeCerts(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "secure-backbone-" });
  const out = await new Deno.Command(`${REPO_ROOT}/scripts/make_certs.sh`, {
    args: [dir],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return dir;
}

/** Client TLS of nats.conf: the servers' certificate, no client certificate asked for. */
const clientTls = (dir: string) =>
  `tls {\n  cert_file: "${dir}/nats.pem"\n  key_file: "${dir}/nats.key"\n  timeout: 2\n}\n`;

/** 12 devices publishing QoS 1 through `nodes`, counted in `acked`. */
const traffic = (nodes: NodeProcess[], acked: Map<string, number>) =>
  deviceTraffic(nodes, acked, { devices: 12 });

Deno.test("secure backbone: routes with login and TLS, nodes as user node over TLS: exactly once through a crash and a NATS restart; no anonymous client, tools cannot write", async () => {
  const dir = await makeCerts();
  try {
    await using nats = await startNatsCluster(3, {
      extra: clientTls(dir) + renderAuthConf({ nodePassword: NODE_PW, toolsPassword: TOOLS_PW }),
      routes: {
        user: "route",
        password: ROUTE_PW,
        tls: { certFile: `${dir}/nats.pem`, keyFile: `${dir}/nats.key`, caFile: `${dir}/ca.pem` },
      },
    });
    const servers = nats.servers.map((s) => `tls://127.0.0.1:${s.port}`);
    const env = {
      NATS_URL: servers.join(","),
      NATS_USER: "node",
      NATS_PASSWORD: NODE_PW,
      NATS_CA: `${dir}/ca.pem`,
      TWINMILL_SHARDS: "8",
    };
    await using n1 = await startNode({ ...env, TWINMILL_NODE_ID: "n1" });
    const n2 = await startNode({ ...env, TWINMILL_NODE_ID: "n2" });
    const acked = new Map<string, number>();
    try {
      // QoS 1 through both nodes, read through both
      let t = traffic([n1, n2], acked);
      await waitFor(() => t.total() >= 100, { timeoutMs: 30_000 });
      await t.stop();
      await assertExact([n1, n2], acked);

      // kill -9 a node under traffic (devices on the survivor)
      t = traffic([n1], acked);
      await waitFor(() => t.total() >= 30, { timeoutMs: 30_000 });
      assert.equal(await n2.kill("SIGKILL"), 137);
      await waitFor(() => t.total() >= 100, { timeoutMs: 30_000, message: "traffic goes on" });
      await t.stop();
      await assertExact([n1], acked);
      // the other node's start-up probes reached n1's subscriptions: dropped, never handled
      const probes = n1.logs.filter((l) => /subscriber threw|not JSON/.test(l));
      assert.deepEqual(probes, [], "probe messages are dropped");
    } finally {
      await n2[Symbol.asyncDispose]();
    }

    // a NATS server restarts under traffic: the routes log in again over TLS
    const t = traffic([n1], acked);
    await waitFor(() => t.total() >= 30, { timeoutMs: 30_000 });
    await nats.servers[0].stop();
    await nats.servers[0].start({ until: "serving" });
    await waitFor(() => t.total() >= 100, { timeoutMs: 60_000, message: "traffic continues" });
    await t.stop();
    await assertExact([n1], acked);

    // a server with a certificate of the CA but no route login cannot join the cluster
    const bin = findBinary("nats-server", "nats-server");
    const rogueConf = `${dir}/rogue.conf`;
    await Deno.writeTextFile(
      rogueConf,
      `listen: "127.0.0.1:-1"\ncluster {\n  name: "twinmill"\n  listen: "127.0.0.1:-1"\n` +
        `  routes: ["nats-route://127.0.0.1:${nats.servers[1].clusterPort}"]\n` +
        `  tls { cert_file: "${dir}/nats.pem", key_file: "${dir}/nats.key", ` +
        `ca_file: "${dir}/ca.pem", verify: true }\n}\n`,
    );
    const rogue = ServerProcess.spawn({
      name: "rogue nats-server",
      cmd: bin,
      args: ["-c", rogueConf],
    });
    try {
      await waitFor(() => rogue.output().includes("Route Error 'Authorization Violation'"), {
        message: "the route without login is refused",
      });
    } finally {
      await rogue.stop();
    }
    for (const s of nats.servers) {
      const routez = JSON.parse(await (await fetch(`${s.monitorUrl}/routez`)).text());
      assert.equal(routez.num_routes, 2, `${s.name}: routes to the two others only`);
    }

    // no credentials: refused at connect, so no publish into TM_IN and no read of tm_twins
    const tls = { caFile: `${dir}/ca.pem` };
    await assert.rejects(() => connect({ servers, tls }), /authorization violation/i);
    // tools: reads a snapshot, cannot publish into the inbound stream
    const tools = await connect({ servers, tls, user: "tools", pass: TOOLS_PW });
    try {
      const m = await (await jetstreamManager(tools)).streams.getMessage("KV_tm_twins", {
        last_by_subj: "$KV.tm_twins.dev-0",
      });
      assert.ok(m && m.data.length > 0, "tools reads a twin's snapshot");
      const err = await jetstream(tools).publish("tm.in.0", "forged", { timeout: 2_000 })
        .then(() => undefined, (e) => e);
      assert.match(String(err?.cause ?? err), /permissions violation for publish to "tm.in.0"/i);
    } finally {
      await tools.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("secure backbone: a node whose NATS user lacks one permission exits at once naming it", async () => {
  const lacking = nodeUserWithout("no-inbound", NODE_PW, { publish: ["tm.in.>"] });
  await using nats = await startNats({
    jetstream: true,
    extra: renderAuthConf({
      nodePassword: NODE_PW,
      toolsPassword: TOOLS_PW,
      extraUsers: [lacking],
    }),
  });
  const r = await runNode({
    NATS_URL: nats.url,
    NATS_USER: "no-inbound",
    NATS_PASSWORD: NODE_PW,
    TWINMILL_NODE_ID: "lacking",
  });
  assert.equal(r.code, 1, r.stderr);
  const last = r.stderr.trim().split("\n").at(-1);
  assert.equal(last, 'twinmill: cannot start: NATS user lacks permission to publish "tm.in.*"');
  // from connected to refused: the probes' time, not a timeout
  const at = (msg: string) => {
    const line = r.stderr.split("\n").find((l) => l.includes(`"msg":"${msg}"`));
    assert.ok(line, `a "${msg}" line:\n${r.stderr}`);
    return Date.parse(JSON.parse(line).ts);
  };
  const ms = at("cannot start") - at("nats connected");
  assert.ok(ms < 3_000, `refused ${ms} ms after connecting`);
  assert.ok(!r.stderr.includes(NODE_PW), "no secret in the output");

  // a JetStream call refused while start-up waits for JetStream: named at once, not waited on
  for (const subject of ["$JS.API.INFO", "$JS.API.STREAM.INFO.TM_IN"]) {
    const user = nodeUserWithout("no-js", NODE_PW, { publish: [subject] });
    await using js = await startNats({
      jetstream: true,
      extra: renderAuthConf({ nodePassword: NODE_PW, toolsPassword: TOOLS_PW, extraUsers: [user] }),
    });
    const t0 = Date.now();
    const r2 = await runNode({
      NATS_URL: js.url,
      NATS_USER: "no-js",
      NATS_PASSWORD: NODE_PW,
      TWINMILL_NODE_ID: "no-js",
      TWINMILL_STARTUP_TIMEOUT: "60",
    });
    assert.equal(r2.code, 1, r2.stderr);
    assert.equal(
      r2.stderr.trim().split("\n").at(-1),
      `twinmill: cannot start: NATS user lacks permission to publish "${subject}"`,
    );
    assert.ok(Date.now() - t0 < 30_000, "refused, not waited on until TWINMILL_STARTUP_TIMEOUT");
  }
});
