/**
 * The compose cluster's NATS security files: `infra/nats-auth.conf` is what
 * `scripts/nats_auth.ts` writes from the node's permission list, and `scripts/make_certs.sh`
 * makes a CA and a certificate the three servers can use for clients and routes, kept out of git.
 */
import assert from "node:assert/strict";
import { renderAuthConf } from "../../src/cluster/permission_list.ts";
import { findBinary, REPO_ROOT } from "../harness/mod.ts";

const text = async (cmd: string, args: string[], cwd = REPO_ROOT) => {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  return { ok: out.success, out: dec.decode(out.stdout) + dec.decode(out.stderr) };
};

Deno.test("nats-auth.conf: the file is what scripts/nats_auth.ts writes (run it after changing permission_list.ts)", async () => {
  assert.equal(await Deno.readTextFile(`${REPO_ROOT}/infra/nats-auth.conf`), renderAuthConf());
});

Deno.test("make_certs.sh: a CA and one certificate for nats-1..3, clients and routes; the CA is kept; out of git", async () => {
  const openssl = findBinary("openssl", "openssl");
  const dir = await Deno.makeTempDir({ prefix: "make-certs-" });
  try {
    const first = await text(`${REPO_ROOT}/scripts/make_certs.sh`, [dir]);
    assert.ok(first.ok, first.out);
    const verify = await text(openssl, ["verify", "-CAfile", "ca.pem", "nats.pem"], dir);
    assert.ok(verify.ok, verify.out);
    const ext = await text(openssl, [
      "x509",
      "-in",
      "nats.pem",
      "-noout",
      "-ext",
      "subjectAltName,extendedKeyUsage",
    ], dir);
    for (const name of ["DNS:nats-1", "DNS:nats-2", "DNS:nats-3"]) {
      assert.match(ext.out, RegExp(name));
    }
    assert.match(ext.out, /TLS Web Server Authentication, TLS Web Client Authentication/);
    for (const key of ["ca.key", "nats.key"]) {
      assert.equal((await Deno.stat(`${dir}/${key}`)).mode! & 0o077, 0, `${key}: owner only`);
    }
    // run again: same CA, a new certificate from it
    const ca = await Deno.readTextFile(`${dir}/ca.pem`);
    const again = await text(`${REPO_ROOT}/scripts/make_certs.sh`, [dir]);
    assert.ok(again.ok && /keeping the CA/.test(again.out), again.out);
    assert.equal(await Deno.readTextFile(`${dir}/ca.pem`), ca);
    assert.ok((await text(openssl, ["verify", "-CAfile", "ca.pem", "nats.pem"], dir)).ok);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  // the default place is git-ignored, and the image's build context leaves infra/ out
  const ignored = await text("git", ["check-ignore", "-q", "infra/certs/nats.key"]);
  assert.ok(ignored.ok, "infra/certs/ is git-ignored");
  assert.match(await Deno.readTextFile(`${REPO_ROOT}/.dockerignore`), /^infra\/\*$/m);
});
