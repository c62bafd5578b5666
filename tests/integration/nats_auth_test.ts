/**
 * The node's side of a secured NATS backbone, against a real nats-server: user/password over
 * TLS with a client certificate (two nodes: cluster ingest, a routed GET, SIGHUP reload of the
 * NATS TLS files, failover when one node dies), token and nkey users; wrong password, wrong CA,
 * missing client certificate each end start-up at once with one line; the insecure combination
 * (remote NATS, no authentication) refused, or allowed with one warning; no secret in any
 * output. Credentials files: an operator, accounts and a user JWT made in the test
 * (tests/harness/nats_jwt.ts), trusted by the server's memory resolver.
 */
import assert from "node:assert/strict";
import { nkeys } from "@nats-io/transport-node";
import {
  getJson,
  type HasHttp,
  type NodeProcess,
  publishQos1,
  runNode,
  startNats,
  startNode,
  waitFor,
} from "../harness/mod.ts";
import { issueCertificates } from "../harness/certs.ts";
import { operatorSetup } from "../harness/nats_jwt.ts";

const PASSWORD = "pw-Xy7-never-logged";
const TOKEN = "tok-Qr5-never-logged";

async function twinVersion(node: HasHttp, id: string): Promise<number | null> {
  const r = await getJson(`${node.httpUrl}/v1/twins/${id}`);
  return r.status === 200 ? r.body.version : null;
}

/** A dir with a CA, a server certificate, a client certificate `node` and another CA in `other/`. */
async function certificates(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "nats-auth-" });
  await issueCertificates(dir, ["node"]);
  await Deno.mkdir(`${dir}/other`);
  await issueCertificates(`${dir}/other`, ["node"]);
  return dir;
}

/** nats-server TLS block: server certificate, client certificates required with `verify`. */
const tlsBlock = (dir: string, verify: boolean) =>
  `tls {\n  cert_file: "${dir}/server.pem"\n  key_file: "${dir}/server.key"\n` +
  `  ca_file: "${dir}/ca.pem"\n  verify: ${verify}\n}\n`;

const users = `authorization {\n  users: [ { user: "node", password: "${PASSWORD}" } ]\n}\n`;

function assertNoSecret(out: string, secrets: string[]) {
  for (const s of secrets) assert.ok(!out.includes(s), `a secret appears in the output:\n${out}`);
}

Deno.test("nats auth: user/password over mutual TLS, two nodes end to end, reload, failover", async () => {
  const dir = await certificates();
  try {
    await Deno.writeTextFile(`${dir}/password`, `${PASSWORD}\n`);
    await using nats = await startNats({ jetstream: true, extra: tlsBlock(dir, true) + users });
    const env = {
      NATS_URL: `tls://127.0.0.1:${nats.port}`,
      NATS_USER: "node",
      NATS_PASSWORD_FILE: `${dir}/password`,
      NATS_CA: `${dir}/ca.pem`,
      NATS_CERT: `${dir}/node.pem`,
      NATS_KEY: `${dir}/node.key`,
      TWINMILL_SHARDS: "8",
    };
    const a: NodeProcess = await startNode({ ...env, TWINMILL_NODE_ID: "a" });
    await using b = await startNode({ ...env, TWINMILL_NODE_ID: "b" });
    try {
      const ids = Array.from({ length: 6 }, (_, i) => `press-${i}`);
      for (const id of ids) {
        const pub = await publishQos1(a, `twins/${id}/telemetry`, '{"temp":1}');
        assert.equal(pub.code, 0, pub.stderr);
      }
      // every twin, whichever node owns it, read through the other node (routed GETs)
      for (const id of ids) {
        await waitFor(async () => (await twinVersion(b, id)) === 1, {
          timeoutMs: 20_000,
          message: `${id} at version 1 through node b`,
        });
      }

      // SIGHUP: the NATS TLS files are read again, for the next (re)connect
      Deno.kill(b.pid, "SIGHUP");
      await b.waitForLog((r) =>
        r.msg === "NATS TLS files reloaded: the next (re)connect uses them"
      );

      // node a dies: b takes its shards over and serves every twin
      await a.kill("SIGKILL");
      for (const id of ids) {
        const pub = await publishQos1(b, `twins/${id}/telemetry`, '{"temp":2}');
        assert.equal(pub.code, 0, pub.stderr);
      }
      for (const id of ids) {
        await waitFor(async () => (await twinVersion(b, id)) === 2, {
          timeoutMs: 30_000,
          message: `${id} at version 2 on node b after a died`,
        });
      }
      const metrics = await (await fetch(`${b.httpUrl}/metrics`)).text();
      assertNoSecret([...a.logs, ...a.stdout, ...b.logs, ...b.stdout, metrics].join("\n"), [
        PASSWORD,
      ]);
    } finally {
      await a[Symbol.asyncDispose]();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("nats auth: SIGHUP re-reads the NATS TLS files; the next reconnect uses them", async () => {
  const dir = await certificates();
  try {
    await using nats = await startNats({ jetstream: true, extra: tlsBlock(dir, true) + users });
    const ca = `${dir}/node-ca.pem`;
    await Deno.copyFile(`${dir}/ca.pem`, ca);
    await using node = await startNode({
      NATS_URL: `tls://127.0.0.1:${nats.port}`,
      NATS_USER: "node",
      NATS_PASSWORD: PASSWORD,
      NATS_CA: ca,
      NATS_CERT: `${dir}/node.pem`,
      NATS_KEY: `${dir}/node.key`,
      TWINMILL_SHARDS: "2",
    });
    const readyz = async () => (await getJson(`${node.httpUrl}/readyz`)).status;
    await waitFor(async () => (await readyz()) === 200, { timeoutMs: 30_000 });
    const reloaded = () =>
      node.logs.filter((l) => l.includes("NATS TLS files reloaded: the next (re)connect uses them"))
        .length;

    // a CA that did not sign the server: the open connection is kept...
    await Deno.copyFile(`${dir}/other/ca.pem`, ca);
    Deno.kill(node.pid, "SIGHUP");
    await waitFor(() => reloaded() === 1, { message: "first reload logged" });
    assert.equal(await readyz(), 200, "the open connection is not touched");
    // ...and the next one uses it: after a server restart the node cannot reconnect
    await nats.stop();
    await nats.start();
    // reconnect attempts every 250 ms: 2 s holds several, each refused
    const until = Date.now() + 2_000;
    while (Date.now() < until) {
      assert.equal(await readyz(), 503, "no reconnect with a CA that does not trust the server");
      await new Promise((r) => setTimeout(r, 250));
    }
    // a file without a PEM block is refused, the files read before stay
    await Deno.writeTextFile(ca, "not a certificate");
    Deno.kill(node.pid, "SIGHUP");
    await node.waitForLog((r) =>
      r.msg === "NATS TLS files not reloaded: the files read before stay in use" &&
      /NATS_CA: file .* holds no PEM/.test(r.error)
    );
    // the right CA again: the next reconnect attempt succeeds, no restart
    await Deno.copyFile(`${dir}/ca.pem`, ca);
    Deno.kill(node.pid, "SIGHUP");
    await waitFor(() => reloaded() === 2, { message: "second reload logged" });
    await waitFor(async () => (await readyz()) === 200, {
      timeoutMs: 30_000,
      message: "/readyz 200 once the node trusts the server again",
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("nats auth: wrong password, wrong CA, missing client certificate: one line each, at once", async () => {
  const dir = await certificates();
  try {
    await using nats = await startNats({ jetstream: true, extra: tlsBlock(dir, true) + users });
    const url = `tls://127.0.0.1:${nats.port}`;
    const good = {
      NATS_URL: url,
      NATS_USER: "node",
      NATS_PASSWORD: PASSWORD,
      NATS_CA: `${dir}/ca.pem`,
      NATS_CERT: `${dir}/node.pem`,
      NATS_KEY: `${dir}/node.key`,
      // a refusal must not be waited out: a timeout would take a minute
      TWINMILL_STARTUP_TIMEOUT: "60",
    };
    const cases: Array<[string, Record<string, string | undefined>, RegExp]> = [
      [
        "wrong password",
        { NATS_PASSWORD: "wrong-pass-Zk2" },
        /refused the node's credentials \(Authorization Violation\): check NATS_USER and NATS_PASSWORD$/,
      ],
      [
        "wrong CA",
        { NATS_CA: `${dir}/other/ca.pem` },
        /has a TLS certificate this node does not trust \(.+\): check NATS_CA$/,
      ],
      [
        "no NATS_CA (the system's roots)",
        { NATS_CA: undefined },
        /has a TLS certificate this node does not trust \(.+\): set NATS_CA to the CA that signed it$/,
      ],
      [
        "missing client certificate",
        { NATS_CERT: undefined, NATS_KEY: undefined },
        /refused the TLS handshake \(.+\): it requires a client certificate \(set NATS_CERT and NATS_KEY\)$/,
      ],
      [
        "client certificate of another CA",
        { NATS_CERT: `${dir}/other/node.pem`, NATS_KEY: `${dir}/other/node.key` },
        /refused the TLS handshake \(.+\): it does not accept the client certificate \(check NATS_CERT and NATS_KEY\)$/,
      ],
    ];
    for (const [name, change, want] of cases) {
      const env = Object.fromEntries(
        Object.entries({ ...good, ...change }).filter(([, v]) => v !== undefined),
      ) as Record<string, string>;
      const t0 = Date.now();
      const res = await runNode(env);
      const took = Date.now() - t0;
      assert.equal(res.code, 1, `${name}: ${res.stderr}`);
      assert.ok(took < 12_000, `${name}: took ${took} ms`);
      const lines = res.stderr.trim().split("\n");
      const last = lines.at(-1)!;
      assert.ok(last.startsWith(`twinmill: cannot start: NATS at ${url} `), `${name}: ${last}`);
      assert.match(last, want, name);
      // the rest are JSON log lines; none says it waits
      for (const l of lines.slice(0, -1)) JSON.parse(l);
      assert.ok(!res.stderr.includes("waiting for NATS"), `${name}: ${res.stderr}`);
      assertNoSecret(res.stderr + res.stdout, [PASSWORD, "wrong-pass-Zk2"]);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("nats auth: token, nkey and credentials file (JWT) users", async () => {
  const user = nkeys.createUser();
  const seed = new TextDecoder().decode(user.getSeed());
  const op = operatorSetup();
  const dir = await Deno.makeTempDir({ prefix: "nats-nkey-" });
  try {
    await Deno.writeTextFile(`${dir}/seed`, `${seed}\n`);
    await Deno.writeTextFile(`${dir}/node.creds`, op.creds);
    await Deno.writeTextFile(`${dir}/foreign.creds`, op.foreignCreds);
    const credsSeed = /SU[A-Z2-7]{56}/.exec(op.creds)![0];
    const servers: Array<[string, string, Record<string, string>]> = [
      ["token", `authorization { token: "${TOKEN}" }\n`, { NATS_TOKEN: TOKEN }],
      [
        "nkey",
        `authorization { users: [ { nkey: "${user.getPublicKey()}" } ] }\n`,
        { NATS_NKEY_FILE: `${dir}/seed` },
      ],
      // an operator, its accounts and the user's JWT, trusted by a memory resolver
      ["creds", op.serverConfig, { NATS_CREDS: `${dir}/node.creds` }],
    ];
    for (const [name, extra, auth] of servers) {
      await using nats = await startNats({ jetstream: true, extra });
      await using node = await startNode({ NATS_URL: nats.url, TWINMILL_SHARDS: "2", ...auth });
      const pub = await publishQos1(node, `twins/${name}-1/telemetry`, '{"temp":3}');
      assert.equal(pub.code, 0, pub.stderr);
      await waitFor(async () => (await twinVersion(node, `${name}-1`)) === 1, {
        message: `${name}: the message is applied`,
      });
      // without the credentials the same server refuses the node at once
      const anon = await runNode({ NATS_URL: nats.url, TWINMILL_STARTUP_TIMEOUT: "60" });
      assert.equal(anon.code, 1, anon.stderr);
      assert.match(anon.stderr.trim().split("\n").at(-1)!, /requires authentication/);
      assertNoSecret(node.logs.join("\n") + anon.stderr, [TOKEN, seed, credsSeed]);
      if (name !== "creds") continue;
      // a user JWT signed by an account the server does not trust
      const foreign = await runNode({
        NATS_URL: nats.url,
        NATS_CREDS: `${dir}/foreign.creds`,
        TWINMILL_STARTUP_TIMEOUT: "60",
      });
      assert.equal(foreign.code, 1, foreign.stderr);
      assert.match(
        foreign.stderr.trim().split("\n").at(-1)!,
        /refused the node's credentials \(Authorization Violation\): check NATS_CREDS$/,
      );
      assertNoSecret(foreign.stderr, [credsSeed]);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("nats auth: a remote NATS without authentication is refused, or allowed with one warning", async () => {
  // 192.0.2.1 (TEST-NET-1) is not this host and answers nobody
  const remote = "nats://192.0.2.1:4222";
  const refused = await runNode({ NATS_URL: remote });
  assert.equal(refused.code, 2, refused.stderr);
  assert.equal(
    refused.stderr.trim(),
    "twinmill: Invalid configuration: NATS_URL: NATS at 192.0.2.1 is not on this host and no " +
      "NATS authentication is set (NATS_CREDS, NATS_NKEY, NATS_USER and NATS_PASSWORD, " +
      "NATS_TOKEN or NATS_CERT): set one, or TWINMILL_NATS_INSECURE=1 to connect without",
  );
  const allowed = await runNode({
    NATS_URL: remote,
    TWINMILL_NATS_INSECURE: "1",
    TWINMILL_STARTUP_TIMEOUT: "1",
  });
  assert.equal(allowed.code, 1, allowed.stderr);
  const warnings = allowed.stderr.split("\n").filter((l) => l.includes("TWINMILL_NATS_INSECURE"));
  assert.equal(warnings.length, 1, allowed.stderr);
  const w = JSON.parse(warnings[0]);
  assert.equal(w.level, "warn");
  assert.match(
    w.msg,
    /^TWINMILL_NATS_INSECURE=1: connecting to NATS at nats:\/\/192\.0\.2\.1:4222 without authentication/,
  );
  assert.match(allowed.stderr, /gave up waiting for NATS\/JetStream/);
});
