import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { startNats } from "../../tests/harness/mod.ts";
import { type BlobStore, memoryBlobStore } from "./firmware_blobs.ts";
import { directoryBlobStore } from "./firmware_blobs_dir.ts";
import { objectBlobStore } from "./firmware_blobs_object.ts";

/** `n` random bytes. */
function randomImage(n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

/** `bytes` as a stream of `piece`-sized chunks. */
function streamOf(bytes: Uint8Array, piece = 50_000): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.slice(at, at += piece));
    },
  });
}

async function readAll(s: ReadableStream<Uint8Array> | null): Promise<Uint8Array> {
  assert.ok(s, "the blob exists");
  const parts: Uint8Array[] = [];
  for await (const p of s) parts.push(p);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, (at += p.length) - p.length);
  return out;
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Equal bytes (compared by length and hash: a diff of megabytes would take minutes). */
function assertBytes(got: Uint8Array, want: Uint8Array, what: string) {
  assert.equal(got.length, want.length, `${what}: length`);
  assert.equal(sha(got), sha(want), `${what}: content`);
}

/** The cases every blob store passes; `chunk` is the store's chunk size where it has one. */
function conformance(
  name: string,
  open: () => Promise<BlobStore & { cleanup(): Promise<void> }>,
  chunk = 64 * 1024,
) {
  const run = (what: string, fn: (s: BlobStore) => Promise<void>) =>
    Deno.test(`${name}: ${what}`, async () => {
      const s = await open();
      try {
        await fn(s);
      } finally {
        await s[Symbol.asyncDispose]();
        await s.cleanup();
      }
    });

  run("a multi-MiB blob reads back whole and by ranges across chunk bounds", async (s) => {
    const img = randomImage(3 * 1024 * 1024 + 123);
    assert.equal(await s.put("img.1", streamOf(img)), img.length);
    assert.equal(sha(await readAll(await s.read("img.1", 0, img.length - 1))), sha(img));
    const ranges: [number, number][] = [
      [0, 0],
      [chunk - 1, chunk],
      [chunk, 2 * chunk - 1],
      [5 * chunk + 17, 5 * chunk + 17],
      [1024 * 1024 + 5, img.length - 1],
      [img.length - 1, img.length - 1],
      [7, 3 * chunk + 9],
    ];
    for (const [a, b] of ranges) {
      assertBytes(await readAll(await s.read("img.1", a, b)), img.subarray(a, b + 1), `${a}-${b}`);
    }
    // resumed: the first part, then the rest from where it stopped, is the image
    const cut = 1_234_567;
    const head = await readAll(await s.read("img.1", 0, cut - 1));
    const tail = await readAll(await s.read("img.1", cut, img.length - 1));
    const whole = new Uint8Array(img.length);
    whole.set(head);
    whole.set(tail, cut);
    assert.equal(sha(whole), sha(img));
  });

  run("a stream that fails keeps nothing", async (s) => {
    let sent = 0;
    const failing = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent >= 300_000) return c.error(new Error("client went away"));
        c.enqueue(randomImage(50_000));
        sent += 50_000;
      },
    });
    await assert.rejects(s.put("broken.1", failing), /client went away/);
    assert.equal(await s.read("broken.1", 0, 0), null);
    assert.deepEqual((await s.list()).map((b) => b.key), []);
  });

  run("delete, list, and reading what is not there", async (s) => {
    assert.equal(await s.read("nothing", 0, 0), null);
    await s.put("a.1", streamOf(randomImage(1000)));
    await s.put("b.2", streamOf(randomImage(10)));
    const listed = (await s.list()).sort((x, y) => x.key < y.key ? -1 : 1);
    assert.deepEqual(listed.map((b) => [b.key, b.size]), [["a.1", 1000], ["b.2", 10]]);
    assert.ok(listed.every((b) => Math.abs(b.mtime - Date.now()) < 60_000));
    assert.equal(await s.delete("a.1"), true);
    assert.equal(await s.delete("a.1"), false);
    assert.equal(await s.read("a.1", 0, 0), null);
    assert.deepEqual((await s.list()).map((b) => b.key), ["b.2"]);
    await assert.rejects(s.put("../escape", streamOf(randomImage(1))), /Bad blob key/);
  });

  run("a reader that stops early is cancelled without error", async (s) => {
    const img = randomImage(512 * 1024);
    await s.put("img.2", streamOf(img));
    const r = (await s.read("img.2", 0, img.length - 1))!.getReader();
    const first = await r.read();
    assert.ok(!first.done && first.value.length > 0);
    await r.cancel();
  });
}

conformance("memory blob store", () =>
  Promise.resolve(Object.assign(memoryBlobStore(), {
    cleanup: () => Promise.resolve(),
  })));

conformance("directory blob store", async () => {
  const dir = await Deno.makeTempDir();
  const s = await directoryBlobStore(`${dir}/firmware`);
  return Object.assign(s, { cleanup: () => Deno.remove(dir, { recursive: true }) });
});

async function natsStore(chunkSize: number) {
  const nats = await startNats({ jetstream: true });
  const nc = await connect({ servers: nats.url });
  const s = await objectBlobStore(nc, { chunkSize });
  return Object.assign(s, {
    nc,
    cleanup: async () => {
      await nc.drain();
      await nats[Symbol.asyncDispose]();
    },
  });
}

conformance("object store blob store", () => natsStore(64 * 1024), 64 * 1024);

Deno.test("object store blob store: ranges of images whose chunks interleaved", async () => {
  const s = await natsStore(16 * 1024);
  try {
    // two uploads fed in turns, so their chunks alternate in the stream
    const a = randomImage(200 * 1024 + 7);
    const b = randomImage(150 * 1024);
    let turn = 0;
    const done = [false, false];
    let wake = () => {};
    let passed = new Promise<void>((r) => wake = r);
    const pass = (to: number) => {
      turn = to;
      const woken = wake;
      passed = new Promise<void>((r) => wake = r);
      woken();
    };
    const alternating = (img: Uint8Array, me: number) => {
      let at = 0;
      return new ReadableStream<Uint8Array>({
        async pull(c) {
          while (turn !== me && !done[1 - me]) await passed;
          if (at >= img.length) {
            done[me] = true;
            pass(1 - me);
            return c.close();
          }
          c.enqueue(img.slice(at, at += 16 * 1024 + 1));
          pass(1 - me);
        },
      });
    };
    await Promise.all([s.put("a.1", alternating(a, 0)), s.put("b.1", alternating(b, 1))]);
    for (const [key, img] of [["a.1", a], ["b.1", b]] as const) {
      assert.equal(sha(await readAll(await s.read(key, 0, img.length - 1))), sha(img));
      for (const start of [1, 16 * 1024, 16 * 1024 * 5 + 3, img.length - 10]) {
        const got = await readAll(await s.read(key, start, img.length - 1));
        assertBytes(got, img.subarray(start), `${key} from ${start}`);
      }
    }
    // the chunks really interleaved (else this test would not test the walk)
    const jsm = await jetstreamManager(s.nc);
    const si = await jsm.streams.info("OBJ_tm_firmware", { subjects_filter: "$O.tm_firmware.C.>" });
    assert.equal(Object.keys(si.state.subjects ?? {}).length, 2);
    // the chunk subjects in stream order switch between the uploads more than once
    const all = await jsm.streams.info("OBJ_tm_firmware");
    const order: string[] = [];
    for (let seq = all.state.first_seq; seq <= all.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage("OBJ_tm_firmware", { seq }).catch(() => null);
      if (m?.subject.includes(".C.")) order.push(m.subject);
    }
    const switches = order.filter((x, i) => i > 0 && x !== order[i - 1]).length;
    assert.ok(switches >= 2, `chunks of the two uploads interleave (${switches} switches)`);
  } finally {
    await s.cleanup();
  }
});
