import assert from "node:assert/strict";
import type { JsonObject } from "../../actors/json.ts";
import type { TwinState } from "../../actors/twin.ts";
import { TwinmillError } from "../errors.ts";
import { type BulkLine, type BulkResult, runBulk } from "./bulk.ts";
import { BULK_LIMITS, type BulkLimits, type BulkRow, ndjsonRows, openCsv } from "./bulk_rows.ts";
import { csvRecords, textLines } from "./bulk_text.ts";

/** A body streamed in chunks of `size` bytes (so fields and lines cross chunk borders). */
function body(text: string, size = 7): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let at = 0;
  return new ReadableStream({
    pull(ctl) {
      if (at >= bytes.length) return ctl.close();
      ctl.enqueue(bytes.slice(at, at += size));
    },
  });
}

async function* chunks(text: string, size = 3): AsyncGenerator<string> {
  for (let i = 0; i < text.length; i += size) yield text.slice(i, i + size);
}

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

function fakeTwins(fail?: (id: string) => boolean) {
  const m = new Map<string, TwinState>();
  return {
    map: m,
    putAttributes(id: string, attributes: JsonObject) {
      if (fail?.(id)) return Promise.reject(new Error("store down"));
      const v = (m.get(id)?.version ?? 0) + 1;
      const s = { id, version: v, attributes } as unknown as TwinState;
      m.set(id, s);
      return Promise.resolve(s);
    },
  };
}

const small = (more: Partial<BulkLimits>): BulkLimits => ({ ...BULK_LIMITS, ...more });

Deno.test("csvRecords: quotes, escaped quotes, commas and line breaks in fields, CRLF, empty lines", async () => {
  const text = 'id,note\r\na,"x, ""y"""\r\n\r\nb,"two\nlines"\n"c",\n,\nd,plain"quote';
  const recs = await all(csvRecords(chunks(text), 1000));
  assert.deepEqual(recs.map((r) => [r.line, r.fields]), [
    [1, ["id", "note"]],
    [2, ["a", 'x, "y"']],
    [4, ["b", "two\nlines"]],
    [6, ["c", ""]],
    [7, ["", ""]],
    [8, ["d", 'plain"quote']],
  ]);
  const open = await all(csvRecords(chunks('a,"never closed\n'), 1000));
  assert.equal(open[0].unterminated, true);
  const long = await all(csvRecords(chunks("a,bbbbbbbbbb\nc,d\n"), 5));
  assert.deepEqual(long.map((r) => r.tooLong), [true, false]);
  assert.deepEqual(long[1].fields, ["c", "d"]);
});

Deno.test("textLines: line numbers, CRLF, a last line without newline, long lines skipped", async () => {
  const lines = await all(textLines(chunks("a\r\n\nbbbbbbbbbbbb\ncc"), 5));
  assert.deepEqual(lines, [
    { line: 1, text: "a", tooLong: false },
    { line: 2, text: "", tooLong: false },
    { line: 3, text: "", tooLong: true },
    { line: 4, text: "cc", tooLong: false },
  ]);
});

Deno.test("openCsv: every other column is an attribute; bad rows are reported, not fatal", async () => {
  const rows = await all(
    await openCsv(body("id,type,site\np-1,press,A\np-2,,B\np-3,press\np-4,a,b,c\n")),
  );
  assert.deepEqual(rows, [
    { row: 2, id: "p-1", attributes: { type: "press", site: "A" } },
    { row: 3, id: "p-2", attributes: { site: "B" } },
    {
      row: 4,
      id: "p-3",
      error: { code: "bad_row", message: "The row has 2 fields; the header has 3" },
    },
    {
      row: 5,
      id: "p-4",
      error: { code: "bad_row", message: "The row has 4 fields; the header has 3" },
    },
  ]);
});

Deno.test("openCsv: a missing or bad header is refused before any row", async () => {
  const refused = async (text: string, re: RegExp) =>
    await assert.rejects(openCsv(body(text)), (err: unknown) => {
      assert.ok(err instanceof TwinmillError);
      assert.equal(err.code, "bad_csv_header");
      assert.match(err.message, re);
      return true;
    });
  await refused("", /empty/);
  await refused("name,site\nx,y\n", /no id column/);
  await refused("id,site,site\n", /twice/);
  await refused("id,,site\n", /1-128/);
  await refused(`id,${Array.from({ length: 65 }, (_, i) => `c${i}`).join(",")}\n`, /columns/);
});

Deno.test("ndjsonRows: objects per line; junk, unknown fields and long lines are bad rows", async () => {
  const text = [
    '{"id":"a","attributes":{"site":"A","n":3}}',
    "",
    "not json",
    "[1]",
    '{"id":"b","site":"B"}',
    `{"id":"c","attributes":{"x":"${"y".repeat(100)}"}}`,
    '{"id":"d"}',
  ].join("\n");
  const rows = await all(ndjsonRows(body(text), small({ maxRowChars: 80 })));
  assert.deepEqual(rows.map((r) => [r.row, r.id, r.error?.code]), [
    [1, "a", undefined],
    [3, undefined, "bad_row"],
    [4, undefined, "bad_row"],
    [5, "b", "bad_row"],
    [6, undefined, "row_too_long"],
    [7, "d", undefined],
  ]);
  assert.deepEqual(rows[0].attributes, { site: "A", n: 3 });
});

Deno.test("limits: bytes and rows end the rows with a 413 error", async () => {
  await assert.rejects(
    all(ndjsonRows(body('{"id":"a"}\n'.repeat(100)), small({ maxBytes: 500 }))),
    (e: unknown) => e instanceof TwinmillError && e.code === "payload_too_large",
  );
  await assert.rejects(
    all(await openCsv(body("id\n" + "a\n".repeat(11)), small({ maxRows: 10 }))),
    (e: unknown) => e instanceof TwinmillError && e.code === "too_many_rows",
  );
  assert.equal(
    (await all(await openCsv(body("id\n" + "a\n".repeat(10)), small({ maxRows: 10 })))).length,
    10,
  );
});

Deno.test("runBulk: results in row order, progress lines, exact summary, tokens for new twins", async () => {
  const twins = fakeTwins((id) => id === "boom");
  await twins.putAttributes("old-1", { site: "x" });
  const rows: BulkRow[] = [
    { row: 2, id: "new-1", attributes: { site: "A" } },
    { row: 3, id: "old-1", attributes: { site: "B" } },
    { row: 4, id: "bad id", attributes: {} },
    { row: 5, id: "boom", attributes: {} },
    { row: 6, error: { code: "bad_row", message: "junk" } },
    { row: 7, id: "new-2", attributes: { n: { deep: 1 } } },
    { row: 8, id: "new-1", attributes: { site: "C" } },
  ];
  let issued = 0;
  const lines = await all(runBulk(all2(rows), {
    twins,
    credentials: {
      create: (twin) =>
        Promise.resolve({
          id: "cred_000000000001",
          credentials: { type: "token", username: twin, token: `tok-${++issued}` },
          createdAt: 0,
        }),
    },
    progressEvery: 3,
    concurrency: 4,
  }));
  const results = lines.filter((l): l is BulkResult => "status" in l);
  assert.deepEqual(results.map((r) => [r.row, r.status, r.error?.code, r.token]), [
    [2, "created", undefined, "tok-1"],
    [3, "updated", undefined, undefined],
    [4, "failed", "bad_twin_id", undefined],
    [5, "failed", "internal", undefined],
    [6, "failed", "bad_row", undefined],
    [7, "failed", "bad_attributes", undefined],
    [8, "updated", undefined, undefined],
  ]);
  assert.equal(lines.filter((l) => "progress" in l).length, 2);
  assert.equal("progress" in lines[3] && lines[3].progress.rows, 3);
  const last = lines.at(-1) as Extract<BulkLine, { summary: unknown }>;
  assert.deepEqual({ ...last.summary, seconds: 0 }, {
    rows: 7,
    created: 1,
    updated: 2,
    failed: 4,
    seconds: 0,
    complete: true,
  });
  assert.equal(twins.map.get("new-1")?.attributes.site, "C", "rows of one twin apply in order");
});

Deno.test("runBulk: a limit passed mid-way reports the rows before it, an error and an incomplete summary", async () => {
  const twins = fakeTwins();
  const text = "id\n" + Array.from({ length: 50 }, (_, i) => `t-${i}`).join("\n") + "\n";
  const lines = await all(
    runBulk(await openCsv(body(text, 16), small({ maxBytes: 200 })), { twins }),
  );
  const results = lines.filter((l) => "status" in l);
  const err = lines.find((l) => "error" in l && !("status" in l)) as { error: { code: string } };
  assert.equal(err.error.code, "payload_too_large");
  const last = lines.at(-1) as Extract<BulkLine, { summary: unknown }>;
  assert.equal(last.summary.complete, false);
  assert.equal(last.summary.rows, results.length);
  assert.ok(results.length > 10 && results.length < 50, String(results.length));
  assert.equal(twins.map.size, results.length);
});

async function* all2<T>(xs: T[]): AsyncGenerator<T> {
  for (const x of xs) {
    await Promise.resolve();
    yield x;
  }
}
