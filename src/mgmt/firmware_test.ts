import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { memoryDocStores } from "../persistence/doc_store.ts";
import { silentLogger } from "../obs/log.ts";
import { TwinmillError } from "../errors.ts";
import { FirmwareImages, type FirmwareOptions } from "./firmware.ts";
import { type FirmwareKey, keyName, loadFirmwareKeys } from "./firmware_keys.ts";
import type { StoredFirmware } from "./firmware_types.ts";
import { memoryBlobStore } from "./firmware_blobs.ts";

/** `n` random bytes. */
function randomImage(n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

/** A fresh Ed25519 key pair; the public key as PEM. */
export async function ed25519Pair(): Promise<{ privateKey: CryptoKey; pem: string }> {
  const kp = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", kp.publicKey));
  const b64 = btoa(String.fromCharCode(...spki));
  return {
    privateKey: kp.privateKey,
    pem: `-----BEGIN PUBLIC KEY-----\n${b64}\n-----END PUBLIC KEY-----\n`,
  };
}

/** The base64 Ed25519 signature of `image`'s SHA-256 digest. */
export async function signImage(key: CryptoKey, image: Uint8Array): Promise<string> {
  const digest = new Uint8Array(createHash("sha256").update(image).digest());
  const sig = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key, digest));
  return btoa(String.fromCharCode(...sig));
}

const streamOf = (b: Uint8Array) =>
  new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < b.length; i += 10_000) c.enqueue(b.slice(i, i + 10_000));
      c.close();
    },
  });

async function setup(o: Partial<FirmwareOptions> = {}) {
  const stores = memoryDocStores();
  const docs = await stores.open<StoredFirmware>("firmware");
  const blobs = memoryBlobStore();
  const start = Date.now();
  let now = start;
  const fw = new FirmwareImages({
    docs,
    blobs,
    keys: [],
    maxBytes: 1024 * 1024,
    requireSigned: false,
    storeMaxBytes: 8 * 1024 * 1024,
    clock: { now: () => now },
    logger: silentLogger,
    ...o,
  });
  return { fw, docs, blobs, start, tick: (ms: number) => now += ms };
}

/** Rejects with a TwinmillError of this code. */
async function refused(p: Promise<unknown>, code: string, status?: number) {
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof TwinmillError, String(e));
    assert.equal(e.code, code, e.message);
    if (status) assert.equal(e.status, status);
    return true;
  });
}

async function keys(...pems: [string, string][]): Promise<FirmwareKey[]> {
  const dir = await Deno.makeTempDir();
  try {
    const files = [];
    for (const [name, pem] of pems) {
      await Deno.writeTextFile(`${dir}/${name}.pem`, pem);
      files.push(`${dir}/${name}.pem`);
    }
    return await loadFirmwareKeys(files);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("firmware: an unsigned upload is stored with its size and SHA-256", async () => {
  const { fw, blobs, start } = await setup();
  const img = randomImage(300_001);
  const meta = await fw.upload({ name: "press-ctrl", version: "1.4.2", body: streamOf(img) });
  assert.deepEqual(meta, {
    id: "press-ctrl-1.4.2",
    name: "press-ctrl",
    version: "1.4.2",
    size: 300_001,
    sha256: createHash("sha256").update(img).digest("hex"),
    createdAt: start,
  });
  assert.deepEqual(await fw.get("press-ctrl-1.4.2"), meta);
  assert.deepEqual(await fw.list(), [meta]);
  assert.equal(await fw.get("other-1"), null);
  assert.equal(await fw.get("../../etc"), null);
  const s = (await fw.stored(meta.id))!;
  assert.deepEqual(blobs.blobs.get(s.blob), img);
});

Deno.test("firmware: a signed upload verifies with a configured key and names it", async () => {
  const release = await ed25519Pair();
  const other = await ed25519Pair();
  const { fw } = await setup({
    keys: await keys(["vendor-2023", other.pem], ["release", release.pem]),
  });
  const img = randomImage(50_000);
  const signature = await signImage(release.privateKey, img);
  const meta = await fw.upload({
    name: "plc",
    version: "2.0.0-rc.1",
    body: streamOf(img),
    signature,
    contentType: "application/x-plc-image",
  });
  assert.equal(meta.signature, signature);
  assert.equal(meta.signedBy, "release");
  assert.equal(meta.contentType, "application/x-plc-image");
  assert.equal(meta.id, "plc-2.0.0-rc.1");
});

Deno.test("firmware: a bad signature is refused and nothing is kept", async () => {
  const release = await ed25519Pair();
  const stranger = await ed25519Pair();
  const { fw, blobs } = await setup({ keys: await keys(["release", release.pem]) });
  const img = randomImage(40_000);
  // signed by a key the node does not know
  await refused(
    fw.upload({
      name: "plc",
      version: "1",
      body: streamOf(img),
      signature: await signImage(stranger.privateKey, img),
    }),
    "firmware_signature_invalid",
    400,
  );
  // the right key, but another image
  await refused(
    fw.upload({
      name: "plc",
      version: "1",
      body: streamOf(img),
      signature: await signImage(release.privateKey, randomImage(40_000)),
    }),
    "firmware_signature_invalid",
  );
  // not a signature at all
  await refused(
    fw.upload({ name: "plc", version: "1", body: streamOf(img), signature: "bm90IGEgc2ln" }),
    "firmware_signature_invalid",
  );
  assert.deepEqual(await fw.list(), []);
  assert.equal(blobs.blobs.size, 0);
});

Deno.test("firmware: signature rules without keys and with signing required", async () => {
  const k = await ed25519Pair();
  const img = randomImage(1000);
  const sig = await signImage(k.privateKey, img);
  const none = await setup();
  await refused(
    none.fw.upload({ name: "a", version: "1", body: streamOf(img), signature: sig }),
    "firmware_signing_not_configured",
    400,
  );
  const strict = await setup({ keys: await keys(["k", k.pem]), requireSigned: true });
  await refused(
    strict.fw.upload({ name: "a", version: "1", body: streamOf(img) }),
    "firmware_signature_required",
    400,
  );
  const ok = await strict.fw.upload({
    name: "a",
    version: "1",
    body: streamOf(img),
    signature: sig,
  });
  assert.equal(ok.signedBy, "k");
});

Deno.test("firmware: size bounds, empty images and duplicates keep nothing", async () => {
  const { fw, blobs } = await setup({ maxBytes: 100_000 });
  await refused(
    fw.upload({ name: "big", version: "1", body: streamOf(randomImage(100_001)) }),
    "firmware_too_large",
    413,
  );
  // declared too large: refused before a byte is read
  let pulled = false;
  const untouched = new ReadableStream<Uint8Array>({ pull: () => void (pulled = true) }, {
    highWaterMark: 0,
  });
  await refused(
    fw.upload({ name: "big", version: "1", body: untouched, contentLength: 200_000 }),
    "firmware_too_large",
  );
  assert.equal(pulled, false);
  await refused(
    fw.upload({ name: "e", version: "1", body: streamOf(new Uint8Array(0)) }),
    "firmware_empty",
    400,
  );
  assert.equal(blobs.blobs.size, 0);
  const exact = await fw.upload({
    name: "big",
    version: "1",
    body: streamOf(randomImage(100_000)),
  });
  assert.equal(exact.size, 100_000);
  await refused(
    fw.upload({ name: "big", version: "1", body: streamOf(randomImage(10)) }),
    "firmware_exists",
    409,
  );
  assert.equal(blobs.blobs.size, 1);
  await refused(
    fw.upload({ name: "a b", version: "1", body: streamOf(randomImage(1)) }),
    "bad_firmware_name",
  );
  await refused(
    fw.upload({ name: "a", version: "", body: streamOf(randomImage(1)) }),
    "bad_firmware_version",
  );
  await refused(
    fw.upload({ name: "a", version: "x/y", body: streamOf(randomImage(1)) }),
    "bad_firmware_version",
  );
});

Deno.test("firmware: the store's total size and image count are bounded", async () => {
  const { fw, blobs } = await setup({ storeMaxBytes: 250_000, maxImages: 3 });
  await fw.upload({ name: "a", version: "1", body: streamOf(randomImage(100_000)) });
  await fw.upload({ name: "a", version: "2", body: streamOf(randomImage(100_000)) });
  await refused(
    fw.upload({ name: "a", version: "3", body: streamOf(randomImage(60_000)) }),
    "firmware_store_full",
    507,
  );
  assert.equal(blobs.blobs.size, 2);
  await fw.upload({ name: "a", version: "3", body: streamOf(randomImage(50_000)) });
  await refused(
    fw.upload({ name: "a", version: "4", body: streamOf(randomImage(1)) }),
    "firmware_store_full",
  );
  assert.equal(await fw.delete("a-1"), true);
  await fw.upload({ name: "a", version: "4", body: streamOf(randomImage(1)) });
});

Deno.test("firmware: uploads at once are bounded per node", async () => {
  const { fw } = await setup({ maxUploads: 1 });
  let reading!: () => void;
  const read = new Promise<void>((r) => reading = r);
  let finish!: () => void;
  const slow = new ReadableStream<Uint8Array>({
    async pull(c) {
      c.enqueue(randomImage(10));
      reading(); // the upload reads its body: it holds its slot
      await new Promise<void>((r) => finish = r);
      c.close();
    },
  }, { highWaterMark: 0 }); // pulled only when read
  const first = fw.upload({ name: "slow", version: "1", body: slow });
  await read;
  await refused(
    fw.upload({ name: "fast", version: "1", body: streamOf(randomImage(10)) }),
    "firmware_upload_busy",
    503,
  );
  finish();
  assert.equal((await first).size, 10);
  assert.equal(
    (await fw.upload({ name: "fast", version: "1", body: streamOf(randomImage(10)) })).size,
    10,
  );
});

Deno.test("firmware: delete removes the document and the blob; sweep removes old orphans", async () => {
  const { fw, blobs, tick } = await setup();
  await fw.upload({ name: "a", version: "1", body: streamOf(randomImage(10)) });
  const kept = await fw.upload({ name: "a", version: "2", body: streamOf(randomImage(10)) });
  assert.equal(await fw.delete("a-1"), true);
  assert.equal(await fw.delete("a-1"), false);
  assert.equal(await fw.get("a-1"), null);
  assert.equal(blobs.blobs.size, 1);
  // an upload cut short by a crash leaves a blob no document refers to
  await blobs.put("a-9.0123456789ab", streamOf(randomImage(5)));
  assert.equal(await fw.sweep(60_000), 0, "too young: maybe an upload in progress");
  tick(120_000);
  assert.equal(await fw.sweep(0), 1);
  assert.equal(blobs.blobs.size, 1);
  const s = (await fw.stored(kept.id))!;
  assert.ok(blobs.blobs.has(s.blob));
  assert.equal((await fw.read(s, 0, 9))?.constructor, ReadableStream);
});

Deno.test("firmware keys: named by file, non-keys refused with the file named", async () => {
  const k = await ed25519Pair();
  assert.deepEqual((await keys(["release-2024", k.pem])).map((x) => x.name), ["release-2024"]);
  assert.equal(keyName("/etc/twinmill/keys/vendor.pub.pem"), "vendor.pub");
  await assert.rejects(keys(["bad", "not a key"]), /Cannot load firmware key ".*bad\.pem"/);
});
