/**
 * Firmware images end to end, as an operator and a device would use them: keys and signatures
 * made with openssl as the README shows, uploads through the API (unsigned, signed, badly
 * signed, too large), a device downloading with its own token (curl `-u id:token`), a broken
 * download resumed with curl `-C -`, ranges and their errors, and in cluster mode an image
 * uploaded through one node downloaded through another.
 */
import assert from "node:assert/strict";
import { getJson, metric, runNode, startNats, startNode, waitFor } from "../harness/mod.ts";

const ADMIN = "admin-key-0123456789abcdef";
const VIEWER = "viewer-key-0123456789abcdef";

async function run(cmd: string, args: string[], opts: { cwd?: string } = {}) {
  const out = await new Deno.Command(cmd, { args, cwd: opts.cwd, stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  const r = { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  assert.equal(r.code, 0, `${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r;
}

/** `n` random bytes written to `file`. */
async function writeImage(file: string, n: number): Promise<Uint8Array<ArrayBuffer>> {
  const img = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(img.subarray(i, i + 65536));
  await Deno.writeFile(file, img);
  return img;
}

/** The SHA-256 `sha256sum` prints for a file. */
async function sha256sum(file: string): Promise<string> {
  return (await run("sha256sum", [file])).stdout.split(" ")[0];
}

/** The README's signing command: Ed25519 over the image's SHA-256 digest, base64. */
async function opensslSign(dir: string, image: string, key: string): Promise<string> {
  const r = await run("bash", [
    "-c",
    `openssl dgst -sha256 -binary ${image} > ${image}.sha256 && ` +
    `openssl pkeyutl -sign -inkey ${key} -rawin -in ${image}.sha256 | base64 -w0`,
  ], { cwd: dir });
  return r.stdout.trim();
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const basic = (user: string, pass: string) => ({
  authorization: `Basic ${btoa(`${user}:${pass}`)}`,
});

async function upload(
  url: string,
  query: string,
  body: Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array>,
  headers: Record<string, string> = {},
) {
  const res = await fetch(`${url}/v1/firmware?${query}`, {
    method: "POST",
    headers: { "content-type": "application/octet-stream", ...bearer(ADMIN), ...headers },
    body,
    ...(body instanceof ReadableStream ? { duplex: "half" } : {}),
  } as RequestInit);
  return { status: res.status, body: await res.json() };
}

Deno.test("firmware: signed and unsigned uploads, a device downloads and resumes with its token", async () => {
  const dir = await Deno.makeTempDir({ prefix: "twinmill-fw-" });
  try {
    // the operator's signing key, made as the README shows; the node gets the public half
    await run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", "signing.pem"], { cwd: dir });
    await run("openssl", ["pkey", "-in", "signing.pem", "-pubout", "-out", "release.pem"], {
      cwd: dir,
    });
    await run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", "stranger.pem"], {
      cwd: dir,
    });
    await using node = await startNode({
      TWINMILL_MQTT_AUTH: "on",
      TWINMILL_API_KEYS: `${ADMIN}:admin,${VIEWER}:viewer`,
      TWINMILL_FIRMWARE_KEYS: `${dir}/release.pem`,
      TWINMILL_FIRMWARE_MAX_BYTES: String(4 * 1024 * 1024),
    });
    const url = node.httpUrl;

    // unsigned
    const plain = await writeImage(`${dir}/plain.bin`, 2 * 1024 * 1024 + 77);
    const up1 = await upload(url, "name=press-ctrl&version=1.4.2", plain);
    assert.equal(up1.status, 201, JSON.stringify(up1.body));
    assert.equal(up1.body.id, "press-ctrl-1.4.2");
    assert.equal(up1.body.size, plain.length);
    assert.equal(up1.body.sha256, await sha256sum(`${dir}/plain.bin`));
    assert.equal(up1.body.signature, undefined);

    // signed with openssl, streamed without a Content-Length
    const signedImg = await writeImage(`${dir}/signed.bin`, 3 * 1024 * 1024);
    const sig = await opensslSign(dir, "signed.bin", "signing.pem");
    const file = await Deno.open(`${dir}/signed.bin`);
    const up2 = await upload(url, "name=press-ctrl&version=1.5.0", file.readable, {
      "x-firmware-signature": sig,
    });
    assert.equal(up2.status, 201, JSON.stringify(up2.body));
    assert.equal(up2.body.signedBy, "release");
    assert.equal(up2.body.signature, sig);
    assert.equal(up2.body.sha256, await sha256sum(`${dir}/signed.bin`));

    // refused: signed by a key the node does not know, too large, a duplicate, a viewer
    const bad = await opensslSign(dir, "plain.bin", "stranger.pem");
    const up3 = await upload(url, "name=press-ctrl&version=1.6.0", plain, {
      "x-firmware-signature": bad,
    });
    assert.equal(up3.status, 400);
    assert.equal(up3.body.error.code, "firmware_signature_invalid");
    const huge = new Uint8Array(4 * 1024 * 1024 + 1);
    const up4 = await upload(url, "name=huge&version=1", huge);
    assert.equal(up4.status, 413);
    assert.equal(up4.body.error.code, "firmware_too_large");
    // streamed (no Content-Length): stopped at the bound, not after
    const up5 = await upload(url, "name=huge&version=2", new Blob([huge, huge]).stream());
    assert.equal(up5.status, 413);
    assert.equal(up5.body.error.code, "firmware_too_large");
    const up6 = await upload(url, "name=press-ctrl&version=1.4.2", plain.subarray(0, 10));
    assert.equal(up6.status, 409);
    assert.equal(up6.body.error.code, "firmware_exists");
    const up7 = await upload(url, "name=x&version=1", plain, bearer(VIEWER));
    assert.equal(up7.status, 403);
    // nothing of the refused uploads is kept: two images, two files
    const list = await getJson(`${url}/v1/firmware`, { headers: bearer(VIEWER) });
    assert.deepEqual(list.body.items.map((f: { id: string }) => f.id), [
      "press-ctrl-1.4.2",
      "press-ctrl-1.5.0",
    ]);
    const files = [];
    for await (const e of Deno.readDir(`${node.dataDir}/firmware`)) files.push(e.name);
    assert.equal(files.length, 2, files.join(", "));

    // a device with its own token
    const put = await getJson(`${url}/v1/twins/press-1`, {
      method: "PUT",
      headers: { ...bearer(ADMIN), "content-type": "application/json" },
      body: JSON.stringify({ attributes: { type: "press" } }),
    });
    assert.equal(put.status, 201);
    const cred = await getJson(`${url}/v1/twins/press-1/credentials`, {
      method: "POST",
      headers: bearer(ADMIN),
    });
    assert.equal(cred.status, 201);
    const token: string = cred.body.credentials.token;
    const dl = `${url}/v1/firmware/press-ctrl-1.5.0/download`;
    const whole = await fetch(dl, { headers: basic("press-1", token) });
    assert.equal(whole.status, 200);
    const got = new Uint8Array(await whole.arrayBuffer());
    assert.equal(got.length, signedImg.length);
    await Deno.writeFile(`${dir}/got.bin`, got);
    assert.equal(await sha256sum(`${dir}/got.bin`), up2.body.sha256);
    assert.equal(whole.headers.get("etag"), `"${up2.body.sha256}"`);
    assert.equal(whole.headers.get("x-firmware-sha256"), up2.body.sha256);
    assert.equal(whole.headers.get("x-firmware-signature"), sig);
    assert.equal(whole.headers.get("accept-ranges"), "bytes");
    assert.equal(whole.headers.get("content-length"), String(signedImg.length));

    // wrong token, another twin's name, no credentials at all
    for (const h of [basic("press-1", "wrong-token"), basic("press-2", token), {}]) {
      const r = await getJson(dl, { headers: h });
      assert.equal(r.status, 401, JSON.stringify(h));
      assert.equal(r.body.error.code, "unauthorized");
    }
    assert.ok((await metric(node, "twinmill_http_auth_denied_total")) >= 3);

    // a download cut short, resumed by curl where it stopped
    const cut = 1_000_000;
    const head = await fetch(dl, {
      headers: { ...basic("press-1", token), range: `bytes=0-${cut - 1}` },
    });
    assert.equal(head.status, 206);
    assert.equal(head.headers.get("content-range"), `bytes 0-${cut - 1}/${signedImg.length}`);
    await Deno.writeFile(`${dir}/resumed.bin`, new Uint8Array(await head.arrayBuffer()));
    assert.equal((await Deno.stat(`${dir}/resumed.bin`)).size, cut);
    await run("curl", ["-sSf", "-u", `press-1:${token}`, "-C", "-", "-o", "resumed.bin", dl], {
      cwd: dir,
    });
    assert.equal(await sha256sum(`${dir}/resumed.bin`), up2.body.sha256);

    // the last bytes, a range past the end, a range of a changed image (If-Range)
    const tail = await fetch(dl, { headers: { ...basic("press-1", token), range: "bytes=-10" } });
    assert.equal(tail.status, 206);
    assert.deepEqual(new Uint8Array(await tail.arrayBuffer()), signedImg.subarray(-10));
    const past = await fetch(dl, {
      headers: { ...basic("press-1", token), range: `bytes=${signedImg.length}-` },
    });
    assert.equal(past.status, 416);
    assert.equal(past.headers.get("content-range"), `bytes */${signedImg.length}`);
    assert.equal((await past.json()).error.code, "range_not_satisfiable");
    const stale = await fetch(dl, {
      headers: { ...basic("press-1", token), range: "bytes=5-", "if-range": '"0000"' },
    });
    assert.equal(stale.status, 200, "a changed image is sent whole");
    await stale.body?.cancel();
    assert.equal(await metric(node, "twinmill_firmware_downloads_total"), 5);
    await waitFor(async () => (await metric(node, "twinmill_firmware_downloads_active")) === 0, {
      message: "every download stream ended",
    });

    // an app downloads with its API key; a delete is gone for everyone
    const byApp = await fetch(`${url}/v1/firmware/press-ctrl-1.4.2/download`, {
      headers: bearer(VIEWER),
    });
    assert.equal(byApp.status, 200);
    assert.equal((await byApp.arrayBuffer()).byteLength, plain.length);
    const del = await fetch(`${url}/v1/firmware/press-ctrl-1.4.2`, {
      method: "DELETE",
      headers: bearer(ADMIN),
    });
    assert.equal(del.status, 204);
    const gone = await getJson(`${url}/v1/firmware/press-ctrl-1.4.2/download`, {
      headers: basic("press-1", token),
    });
    assert.equal(gone.status, 404);
    assert.equal(gone.body.error.code, "firmware_not_found");
    // upload and delete are in the audit log
    const audit = await getJson(`${url}/v1/audit?limit=100`, { headers: bearer(ADMIN) });
    const actions = audit.body.items.map((e: { action: string }) => e.action);
    assert.ok(actions.includes("firmware.create"), actions.join(","));
    assert.ok(actions.includes("firmware.delete"), actions.join(","));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("firmware in cluster mode: uploaded through one node, downloaded through another", async () => {
  await using nats = await startNats({ jetstream: true });
  const env = { NATS_URL: nats.url, TWINMILL_SHARDS: "4" };
  await using n1 = await startNode({ ...env, TWINMILL_NODE_ID: "f1" });
  await using n2 = await startNode({ ...env, TWINMILL_NODE_ID: "f2" });
  const img = new Uint8Array(3 * 1024 * 1024 + 5);
  for (let i = 0; i < img.length; i += 65536) crypto.getRandomValues(img.subarray(i, i + 65536));
  const res = await fetch(`${n1.httpUrl}/v1/firmware?name=conveyor&version=7`, {
    method: "POST",
    body: img,
  });
  const meta = await res.json();
  assert.equal(res.status, 201, JSON.stringify(meta));
  const listed = await getJson(`${n2.httpUrl}/v1/firmware/conveyor-7`);
  assert.equal(listed.status, 200);
  assert.equal(listed.body.sha256, meta.sha256);
  const part = await fetch(`${n2.httpUrl}/v1/firmware/conveyor-7/download`, {
    headers: { range: "bytes=1000000-" },
  });
  assert.equal(part.status, 206);
  const rest = new Uint8Array(await part.arrayBuffer());
  const first = new Uint8Array(
    await (await fetch(`${n2.httpUrl}/v1/firmware/conveyor-7/download`, {
      headers: { range: "bytes=0-999999" },
    })).arrayBuffer(),
  );
  const whole = new Uint8Array(img.length);
  whole.set(first);
  whole.set(rest, first.length);
  const hex = (b: ArrayBuffer) =>
    Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");
  assert.equal(hex(await crypto.subtle.digest("SHA-256", whole)), meta.sha256);
  // a delete through node 2 removes it for node 1
  assert.equal(
    (await fetch(`${n2.httpUrl}/v1/firmware/conveyor-7`, { method: "DELETE" })).status,
    204,
  );
  assert.equal((await getJson(`${n1.httpUrl}/v1/firmware/conveyor-7/download`)).status, 404);
});

Deno.test("firmware settings: a bad value stops start-up with one line naming the variable", async () => {
  const dir = await Deno.makeTempDir({ prefix: "twinmill-fw-cfg-" });
  try {
    await run("openssl", ["genpkey", "-algorithm", "ed25519", "-out", "private.pem"], { cwd: dir });
    await run("openssl", [
      "genpkey",
      "-algorithm",
      "rsa",
      "-pkeyopt",
      "rsa_keygen_bits:1024",
      "-out",
      "rsa.pem",
    ], { cwd: dir });
    await run("openssl", ["pkey", "-in", "rsa.pem", "-pubout", "-out", "rsa.pub.pem"], {
      cwd: dir,
    });
    const cases: [Record<string, string>, string, RegExp][] = [
      [{ TWINMILL_FIRMWARE_KEYS: `${dir}/missing.pem` }, "TWINMILL_FIRMWARE_KEYS", /cannot read/],
      // the private key by mistake: it never belongs on the node
      [{ TWINMILL_FIRMWARE_KEYS: `${dir}/private.pem` }, "TWINMILL_FIRMWARE_KEYS", /Ed25519/],
      [{ TWINMILL_FIRMWARE_KEYS: `${dir}/rsa.pub.pem` }, "TWINMILL_FIRMWARE_KEYS", /Ed25519/],
      [{ TWINMILL_FIRMWARE_REQUIRE_SIGNED: "true" }, "TWINMILL_FIRMWARE_REQUIRE_SIGNED", /KEYS/],
      [{ TWINMILL_FIRMWARE_REQUIRE_SIGNED: "yes" }, "TWINMILL_FIRMWARE_REQUIRE_SIGNED", /true/],
      [{ TWINMILL_FIRMWARE_MAX_BYTES: "1G" }, "TWINMILL_FIRMWARE_MAX_BYTES", /integer/],
    ];
    const results = await Promise.all(cases.map(([env]) => runNode(env)));
    results.forEach((r, i) => {
      const [, variable, why] = cases[i];
      assert.equal(r.code, 2, `${variable}: ${r.stderr}`);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], new RegExp(`^twinmill: Invalid configuration: ${variable}: `));
      assert.match(lines[0], why);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
