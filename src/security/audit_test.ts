import assert from "node:assert/strict";
import { AuditLog } from "./audit.ts";
import { type AuditInput, REDACTED } from "./audit_entry.ts";

const T0 = Date.UTC(2024, 4, 1, 12, 0, 0);

async function tempDir(): Promise<AsyncDisposable & { path: string }> {
  const path = await Deno.makeTempDir({ prefix: "twinmill_audit_" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
  };
}

const entry = (i: number, more: Partial<AuditInput> = {}): AuditInput => ({
  ts: T0 + i,
  actor: "jwt:alice",
  action: "twin.put",
  target: `press-${i}`,
  result: "ok",
  ...more,
});

const fileLines = async (path: string) =>
  (await Deno.readTextFile(path)).split("\n").filter((l) => l !== "");

Deno.test("record, flush, query: newest first, filtered by since, actor and exact action", async () => {
  await using dir = await tempDir();
  await using log = await AuditLog.open(dir.path);
  log.record(entry(1, { requestId: "r-1", role: "admin", detail: { fields: 3, force: true } }));
  log.record(entry(3, { actor: "key:ab12cd…", action: "desired.patch" }));
  log.record(entry(2, { actor: "device:press-7", action: "auth.failure", result: "denied" }));
  log.record(entry(4, { action: "alarm.ack" }));
  await log.flush();
  assert.equal(log.written, 4);
  assert.equal(log.dropped, 0);

  const all = await log.query({ limit: 100 });
  assert.deepEqual(all.map((e) => e.ts - T0), [4, 3, 2, 1], "newest by ts, not by file order");
  assert.deepEqual(all[3], {
    ts: T0 + 1,
    requestId: "r-1",
    actor: "jwt:alice",
    role: "admin",
    action: "twin.put",
    target: "press-1",
    result: "ok",
    detail: { fields: 3, force: true },
  });
  assert.deepEqual((await log.query({ limit: 2 })).map((e) => e.ts - T0), [4, 3]);
  assert.deepEqual((await log.query({ since: T0 + 2, limit: 9 })).map((e) => e.ts - T0), [4, 3, 2]);
  assert.deepEqual(
    (await log.query({ actor: "jwt:alice", limit: 9 })).map((e) => e.action),
    ["alarm.ack", "twin.put"],
  );
  assert.deepEqual(
    (await log.query({ action: "auth.failure", limit: 9 })).map((e) => e.actor),
    ["device:press-7"],
  );
  assert.deepEqual(await log.query({ action: "auth", limit: 9 }), [], "exact unless it ends in .");
  assert.deepEqual(await log.query({ actor: "jwt:alice", since: T0 + 5, limit: 9 }), []);
  assert.deepEqual(await log.query({ limit: 0 }), []);
});

Deno.test("query: an action ending in '.' is a prefix; equal times keep the later write first", async () => {
  await using dir = await tempDir();
  await using log = await AuditLog.open(dir.path);
  for (
    const action of ["credential.create", "credentials.list", "credential.revoke", "credential"]
  ) {
    log.record({ ts: T0, actor: "jwt:root", action, target: "press-7", result: "ok" });
  }
  assert.deepEqual(
    (await log.query({ action: "credential.", limit: 10 })).map((e) => e.action),
    ["credential.revoke", "credential.create"],
  );
  assert.deepEqual(
    (await log.query({ action: "credential", limit: 10 })).map((e) => e.action),
    ["credential"],
  );
});

Deno.test("query finds entries without an explicit flush; ts defaults to the injected clock", async () => {
  await using dir = await tempDir();
  let now = T0;
  await using log = await AuditLog.open(dir.path, { now: () => now });
  log.record({ actor: "anonymous", action: "twin.put", result: "failed" });
  now += 1000;
  log.record({ actor: "anonymous", action: "twin.put", result: "ok", ts: Number.NaN });
  assert.deepEqual((await log.query({ limit: 5 })).map((e) => [e.ts, e.result]), [
    [T0 + 1000, "ok"],
    [T0, "failed"],
  ]);
});

Deno.test("rotation: audit.log -> audit.log.1 before passing maxBytes; one old file kept", async () => {
  await using dir = await tempDir();
  const line = JSON.stringify({ ts: T0, actor: "jwt:alice", action: "twin.put", result: "ok" });
  const bytes = line.length + 1; // every entry below has this many bytes
  await using log = await AuditLog.open(dir.path, { maxBytes: bytes * 4 });
  for (let i = 0; i < 6; i++) {
    log.record({ ts: T0 + i, actor: "jwt:alice", action: "twin.put", result: "ok" });
  }
  await log.flush();
  assert.equal((await fileLines(`${dir.path}/audit.log.1`)).length, 4);
  assert.equal((await fileLines(`${dir.path}/audit.log`)).length, 2);
  assert.deepEqual((await log.query({ limit: 10 })).map((e) => e.ts - T0), [5, 4, 3, 2, 1, 0]);

  // in a later batch: rotate again, so the first four are gone and no audit.log.2 appears
  for (let i = 6; i < 9; i++) {
    log.record({ ts: T0 + i, actor: "jwt:alice", action: "twin.put", result: "ok" });
  }
  await log.flush();
  assert.equal(log.written, 9);
  assert.deepEqual((await log.query({ limit: 10 })).map((e) => e.ts - T0), [8, 7, 6, 5, 4]);
  const names = [...Deno.readDirSync(dir.path)].map((e) => e.name).sort();
  assert.deepEqual(names, ["audit.log", "audit.log.1"]);
  assert.ok((await Deno.stat(`${dir.path}/audit.log`)).size <= bytes * 4);
});

Deno.test("rotation: an entry larger than maxBytes is still written, alone in its file", async () => {
  await using dir = await tempDir();
  await using log = await AuditLog.open(dir.path, { maxBytes: 50 });
  log.record(entry(1, { detail: { note: "x".repeat(200) } }));
  log.record(entry(2));
  await log.flush();
  assert.equal(log.written, 2);
  assert.equal((await fileLines(`${dir.path}/audit.log.1`)).length, 1);
  assert.deepEqual((await log.query({ limit: 5 })).map((e) => e.ts - T0), [2, 1]);
});

Deno.test("reopening appends to the existing file and counts its size toward rotation", async () => {
  await using dir = await tempDir();
  {
    await using log = await AuditLog.open(dir.path);
    log.record(entry(1));
    log.record(entry(2));
  } // disposal flushes
  {
    await using log = await AuditLog.open(dir.path);
    log.record(entry(3));
    await log.flush();
    assert.deepEqual((await log.query({ limit: 10 })).map((e) => e.ts - T0), [3, 2, 1]);
  }
  assert.equal((await fileLines(`${dir.path}/audit.log`)).length, 3);

  const size = (await Deno.stat(`${dir.path}/audit.log`)).size;
  await using log = await AuditLog.open(dir.path, { maxBytes: size + 10 });
  log.record(entry(4));
  await log.flush();
  assert.equal((await fileLines(`${dir.path}/audit.log.1`)).length, 3, "rotated on reopen size");
  assert.equal((await fileLines(`${dir.path}/audit.log`)).length, 1);
});

Deno.test("overflow: past maxQueue pending entries, record drops and counts without blocking", async () => {
  await using dir = await tempDir();
  await using log = await AuditLog.open(dir.path, { maxQueue: 5 });
  for (let i = 0; i < 20; i++) log.record(entry(i));
  assert.equal(log.dropped, 15);
  await log.flush();
  assert.equal(log.written, 5);
  assert.deepEqual((await log.query({ limit: 100 })).map((e) => e.ts - T0), [4, 3, 2, 1, 0]);
  // the queue drained: there is room again
  log.record(entry(20));
  await log.flush();
  assert.equal(log.written, 6);
  assert.equal(log.dropped, 15);
});

Deno.test("after close, records are dropped and counted; close is idempotent; query still reads", async () => {
  await using dir = await tempDir();
  const log = await AuditLog.open(dir.path);
  log.record(entry(1));
  await Promise.all([log.close(), log.close()]);
  assert.equal(log.written, 1);
  log.record(entry(2));
  assert.equal(log.dropped, 1);
  assert.deepEqual((await log.query({ limit: 5 })).map((e) => e.ts - T0), [1]);
  await log[Symbol.asyncDispose]();
});

Deno.test("secrets are never stored: detail keys naming them and bearer values are redacted", async () => {
  await using dir = await tempDir();
  await using log = await AuditLog.open(dir.path);
  const secrets = ["tok-123", "hunter2", "s3cr3t", "Bearer eyJabc.def", "k-999", "Basic dXNlcg=="];
  log.record(entry(1, {
    action: "credential.create",
    detail: {
      token: secrets[0],
      newPassword: secrets[1],
      clientSecret: secrets[2],
      Authorization: secrets[3],
      apiKey: secrets[4],
      header: secrets[5],
      keyCount: 2,
      credentialId: "c-1",
      twin: "press-7",
      rotate: false,
    },
  }));
  await log.flush();
  const raw = await Deno.readTextFile(`${dir.path}/audit.log`);
  for (const s of secrets) assert.ok(!raw.includes(s), `${s} reached the file`);
  const [e] = await log.query({ limit: 1 });
  assert.deepEqual(e.detail, {
    token: REDACTED,
    newPassword: REDACTED,
    clientSecret: REDACTED,
    Authorization: REDACTED,
    apiKey: REDACTED,
    header: REDACTED,
    keyCount: REDACTED,
    credentialId: "c-1",
    twin: "press-7",
    rotate: false,
  });
});

Deno.test("record drops and counts what is not an entry instead of throwing", async () => {
  await using dir = await tempDir();
  await using log = await AuditLog.open(dir.path);
  log.record({ actor: "jwt:alice", action: "twin.put", result: "maybe" } as unknown as AuditInput);
  log.record({ actor: 7, action: "twin.put", result: "ok" } as unknown as AuditInput);
  assert.equal(log.dropped, 2);
  await log.flush();
  assert.equal(log.written, 0);
});

Deno.test("query skips malformed lines in either file", async () => {
  await using dir = await tempDir();
  const good = (ts: number) => JSON.stringify({ ts, actor: "a", action: "x.y", result: "ok" });
  await Deno.writeTextFile(
    `${dir.path}/audit.log.1`,
    [
      good(T0 + 1),
      "{not json",
      "[]",
      "null",
      '{"ts":"soon","actor":"a","action":"x","result":"ok"}',
    ]
      .join("\n") + "\n",
  );
  await Deno.writeTextFile(
    `${dir.path}/audit.log`,
    ['{"ts":1,"actor":"a","action":"x","result":"nope"}', "", good(T0 + 2), '{"ts":3,"act'].join(
      "\n",
    ),
  );
  await using log = await AuditLog.open(dir.path);
  log.record(entry(3));
  assert.deepEqual((await log.query({ limit: 10 })).map((e) => e.ts - T0), [3, 2, 1]);
});

Deno.test("open rejects a bad maxBytes or maxQueue", async () => {
  await using dir = await tempDir();
  await assert.rejects(AuditLog.open(dir.path, { maxBytes: 0 }), RangeError);
  await assert.rejects(AuditLog.open(dir.path, { maxQueue: 1.5 }), /maxQueue/);
});

Deno.test("a failed write counts its entries as dropped, keeps the error, and the next batch reopens", async () => {
  await using dir = await tempDir();
  await using log = await AuditLog.open(dir.path, { maxBytes: 1 }); // rotate before every entry
  log.record(entry(1));
  await log.flush();
  await Deno.remove(dir.path, { recursive: true });
  log.record(entry(2));
  await log.flush();
  assert.equal(log.dropped, 1);
  assert.ok(log.lastError instanceof Deno.errors.NotFound, String(log.lastError));
  await Deno.mkdir(dir.path);
  log.record(entry(3));
  await log.flush();
  assert.equal(log.written, 2);
  assert.deepEqual((await log.query({ limit: 5 })).map((e) => e.ts - T0), [3]);
});

Deno.test("queries racing writes and rotations see no gap and no repeat", async () => {
  await using dir = await tempDir();
  await using log = await AuditLog.open(dir.path, { maxBytes: 4096 });
  let i = 0;
  const writer = (async () => {
    for (let burst = 0; burst < 40; burst++) {
      for (let k = 0; k < 25; k++) log.record(entry(i++));
      await new Promise((r) => setTimeout(r, 0));
    }
  })();
  for (let q = 0; q < 20; q++) {
    const got = (await log.query({ limit: 1000 })).map((e) => e.ts);
    // written in ts order and only the oldest rotate away: a gap or a repeat means a bad read
    for (let k = 1; k < got.length; k++) assert.equal(got[k - 1] - got[k], 1, `at ${k}: ${got}`);
  }
  await writer;
  await log.flush();
  assert.equal(log.written, 1000);
  const last = await log.query({ limit: 1 });
  assert.equal(last[0].ts, T0 + 999);
});
