/**
 * Bulk provisioning: twins from a CSV or NDJSON file, read as a stream and applied row by
 * row (a few at a time), with one result per row, progress lines and a summary. A bad row
 * never stops the others; the body, the rows and each row's length are bounded.
 *
 * CSV (RFC 4180): a header row with an `id` column; every other column is an attribute
 * (string values; an empty cell is no attribute); quoted fields may hold commas, `""` and
 * line breaks. NDJSON: one `{"id": "...", "attributes": {...}}` per line.
 * @module
 */
import { isValidTwinId } from "../../actors/validate.ts";
import { readJson } from "../../actors/json_intake.ts";
import { BadRequestError, TwinmillError } from "../errors.ts";
import { checkAttributes } from "./provisioning_checks.ts";
import type { CredentialIssuer, ProvisionTwins } from "./provisioning_types.ts";

/** Bounds of one bulk request. */
export interface BulkLimits {
  /** Largest body, bytes. */
  maxBytes: number;
  /** Most data rows. */
  maxRows: number;
  /** Longest row (a CSV record or an NDJSON line), characters. */
  maxRowChars: number;
}

/** The default bounds: 64 MiB, 100 000 rows, 64 KiB per row. */
export const BULK_LIMITS: BulkLimits = {
  maxBytes: 64 * 1024 * 1024,
  maxRows: 100_000,
  maxRowChars: 64 * 1024,
};

/** Most CSV columns: `id` and 64 attributes. */
export const MAX_COLUMNS = 65;

/** One row as read: its line number (the line it starts on) and content, or why it is bad. */
export interface BulkRow {
  row: number;
  id?: unknown;
  attributes?: unknown;
  error?: { code: string; message: string };
}

/** A bound of the request was passed (413); rows read before it were applied. */
export class BulkLimitError extends TwinmillError {
  override name = "BulkLimitError";
  constructor(code: "payload_too_large" | "too_many_rows", message: string) {
    super(code, 413, message);
  }
}

/** The body as text, failing with {@linkcode BulkLimitError} past `maxBytes`. */
export function boundedText(
  body: ReadableStream<Uint8Array>,
  maxBytes: number,
): ReadableStream<string> {
  let n = 0;
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctl) {
        n += chunk.byteLength;
        if (n > maxBytes) {
          ctl.error(
            new BulkLimitError(
              "payload_too_large",
              `The body is over ${maxBytes} bytes; split the file`,
            ),
          );
        } else ctl.enqueue(chunk);
      },
    }),
  ).pipeThrough(new TextDecoderStream());
}

interface CsvRecord {
  line: number;
  fields: string[];
  tooLong: boolean;
  unterminated?: boolean;
}

/** CSV records (RFC 4180) from text chunks; empty lines are skipped. */
export async function* csvRecords(
  chunks: AsyncIterable<string>,
  maxChars: number,
): AsyncGenerator<CsvRecord> {
  let fields: string[] = [];
  let field = "";
  let size = 0;
  let tooLong = false;
  let inQuotes = false;
  let quotePending = false; // a `"` inside quotes: closing, or the first of `""`?
  let wasQuoted = false; // the current field started with a quote
  let line = 1;
  let start = 1;
  const add = (ch: string) => {
    if (++size > maxChars) tooLong = true;
    else field += ch;
  };
  const endField = () => {
    fields.push(field);
    field = "";
    wasQuoted = false;
  };
  for await (const chunk of chunks) {
    for (let i = 0; i < chunk.length; i++) {
      const ch = chunk[i];
      if (quotePending) {
        quotePending = false;
        if (ch === '"') {
          add('"');
          continue;
        }
        inQuotes = false; // the quote closed the field: read ch outside quotes
      }
      if (inQuotes) {
        if (ch === '"') quotePending = true;
        else {
          if (ch === "\n") line++;
          add(ch);
        }
        continue;
      }
      if (ch === ",") {
        add("");
        endField();
      } else if (ch === "\n") {
        const empty = fields.length === 0 && field === "" && !wasQuoted;
        endField();
        if (!empty) yield { line: start, fields, tooLong };
        fields = [];
        size = 0;
        tooLong = false;
        start = ++line;
      } else if (ch === "\r") {
        // CRLF line ends (a lone CR is dropped too)
      } else if (ch === '"' && field === "" && !wasQuoted) {
        inQuotes = true;
        wasQuoted = true;
      } else add(ch);
    }
  }
  if (fields.length > 0 || field !== "" || wasQuoted) {
    endField();
    yield { line: start, fields, tooLong, unterminated: inQuotes && !quotePending };
  }
}

/** Lines from text chunks with their numbers; a line over `maxChars` comes as `tooLong`. */
export async function* textLines(
  chunks: AsyncIterable<string>,
  maxChars: number,
): AsyncGenerator<{ line: number; text: string; tooLong: boolean }> {
  let buf = "";
  let tooLong = false;
  let line = 1;
  for await (const chunk of chunks) {
    let from = 0;
    for (let nl = chunk.indexOf("\n"); nl >= 0; nl = chunk.indexOf("\n", from)) {
      const part = chunk.slice(from, nl);
      const long = tooLong || buf.length + part.length > maxChars;
      yield { line: line++, text: long ? "" : (buf + part).replace(/\r$/, ""), tooLong: long };
      buf = "";
      tooLong = false;
      from = nl + 1;
    }
    const rest = chunk.slice(from);
    if (!tooLong && buf.length + rest.length > maxChars) {
      tooLong = true;
      buf = "";
    } else if (!tooLong) buf += rest;
  }
  if (buf !== "" || tooLong) yield { line, text: buf.replace(/\r$/, ""), tooLong };
}

const tooManyRows = (max: number) =>
  new BulkLimitError("too_many_rows", `The file has more than ${max} rows; split it`);

/**
 * Rows of a CSV body. The header is read first: a missing or bad one is refused here
 * (`bad_csv_header`), before any row is applied.
 */
export async function openCsv(
  body: ReadableStream<Uint8Array>,
  limits: BulkLimits = BULK_LIMITS,
): Promise<AsyncIterable<BulkRow>> {
  const records = csvRecords(boundedText(body, limits.maxBytes), limits.maxRowChars);
  const first = await records.next();
  const bad = (why: string) => {
    records.return(undefined).catch(() => {});
    return new BadRequestError(why, "bad_csv_header");
  };
  if (first.done) throw bad("The CSV file is empty: it needs a header row with an id column");
  const { fields: header, tooLong } = first.value;
  if (tooLong) throw bad(`The header row is over ${limits.maxRowChars} characters`);
  if (header.length > MAX_COLUMNS) {
    throw bad(`The header has ${header.length} columns; at most ${MAX_COLUMNS} (id and 64 more)`);
  }
  const names = header.map((h) => h.trim());
  const seen = new Set<string>();
  for (const n of names) {
    if (n.length < 1 || n.length > 128) throw bad("Every column name must be 1-128 characters");
    if (seen.has(n)) throw bad(`Column "${n}" appears twice in the header`);
    seen.add(n);
  }
  const idAt = names.indexOf("id");
  if (idAt < 0) throw bad(`The header has no id column (it has: ${names.join(", ")})`);
  return (async function* () {
    let rows = 0;
    for await (const r of records) {
      if (++rows > limits.maxRows) throw tooManyRows(limits.maxRows);
      if (r.tooLong) {
        yield rowError(r.line, "row_too_long", `The row is over ${limits.maxRowChars} characters`);
      } else if (r.unterminated) {
        yield rowError(r.line, "bad_row", "A quoted field is not closed before the end");
      } else if (r.fields.length !== names.length) {
        yield rowError(
          r.line,
          "bad_row",
          `The row has ${r.fields.length} fields; the header has ${names.length}`,
          r.fields[idAt],
        );
      } else {
        const attributes: Record<string, string> = {};
        names.forEach((n, i) => {
          if (i !== idAt && r.fields[i] !== "") attributes[n] = r.fields[i];
        });
        yield { row: r.line, id: r.fields[idAt], attributes };
      }
    }
  })();
}

/** Rows of an NDJSON body: `{"id", "attributes"}` per line; blank lines are skipped. */
export async function* ndjsonRows(
  body: ReadableStream<Uint8Array>,
  limits: BulkLimits = BULK_LIMITS,
): AsyncGenerator<BulkRow> {
  let rows = 0;
  for await (const l of textLines(boundedText(body, limits.maxBytes), limits.maxRowChars)) {
    if (!l.tooLong && l.text.trim() === "") continue;
    if (++rows > limits.maxRows) throw tooManyRows(limits.maxRows);
    if (l.tooLong) {
      yield rowError(l.line, "row_too_long", `The line is over ${limits.maxRowChars} characters`);
      continue;
    }
    // each line goes through the one JSON intake (its default limits)
    const r = readJson(l.text);
    if (!r.ok) {
      const why = r.violation.code === "not_json" ? "The line is not JSON" : r.violation.message;
      yield rowError(l.line, r.violation.code === "not_json" ? "bad_row" : r.violation.code, why);
      continue;
    }
    const v = r.value;
    if (v === null || typeof v !== "object" || Array.isArray(v)) {
      yield rowError(l.line, "bad_row", 'The line must be a JSON object {"id", "attributes"}');
      continue;
    }
    const o = v as Record<string, unknown>;
    const extra = Object.keys(o).find((k) => k !== "id" && k !== "attributes");
    if (extra !== undefined) {
      yield rowError(
        l.line,
        "bad_row",
        `Unknown field "${extra.slice(0, 64)}": put attributes under "attributes"`,
        o.id,
      );
      continue;
    }
    yield { row: l.line, id: o.id, attributes: o.attributes };
  }
}

const rowError = (row: number, code: string, message: string, id?: unknown): BulkRow => ({
  row,
  ...(id === undefined ? {} : { id }),
  error: { code, message },
});

/** Counts so far. */
export interface BulkCounts {
  rows: number;
  created: number;
  updated: number;
  failed: number;
  seconds: number;
}

/** One result row of the report. */
export interface BulkResult {
  row: number;
  id?: string;
  status: "created" | "updated" | "failed";
  error?: { code: string; message: string };
  /** With `credentials`: the new twin's device token (only in the report). */
  token?: string;
}

/** A line of the report. */
export type BulkLine =
  | BulkResult
  | { progress: BulkCounts }
  | { error: { code: string; message: string } }
  | { summary: BulkCounts & { complete: boolean } };

/** What {@linkcode runBulk} needs. */
export interface BulkDeps {
  twins: Pick<ProvisionTwins, "putAttributes">;
  /** Set: issue a token for every created twin. */
  credentials?: CredentialIssuer;
  /** Rows applied at once (default 16). */
  concurrency?: number;
  /** A progress line every this many rows (default 500). */
  progressEvery?: number;
  /** Called with every progress line's counts (logging). */
  onProgress?(c: BulkCounts): void;
  now?: () => number;
}

/**
 * Apply rows, a few at a time, and yield the report in row order: one result per row, a
 * progress line every `progressEvery` rows, then the summary. A limit passed while reading
 * ends the rows: an error line, then the summary with `complete: false`.
 */
export async function* runBulk(
  rows: AsyncIterable<BulkRow>,
  d: BulkDeps,
): AsyncGenerator<BulkLine> {
  const now = d.now ?? (() => performance.now());
  const t0 = now();
  const every = d.progressEvery ?? 500;
  const c: BulkCounts = { rows: 0, created: 0, updated: 0, failed: 0, seconds: 0 };
  const counts = () => ({ ...c, seconds: Math.round((now() - t0) / 10) / 100 });
  const window: Promise<BulkResult>[] = [];
  /** The last pending change per twin id: rows of one twin apply in file order. */
  const lastOf = new Map<string, Promise<unknown>>();
  const apply = (r: BulkRow): Promise<BulkResult> => {
    if (typeof r.id === "string" && isValidTwinId(r.id)) {
      const id = r.id;
      const p = (lastOf.get(id) ?? Promise.resolve()).then(() => applyRow(r, d));
      lastOf.set(id, p);
      p.finally(() => lastOf.get(id) === p && lastOf.delete(id)).catch(() => {});
      return p;
    }
    return applyRow(r, d);
  };
  function* emit(res: BulkResult): Generator<BulkLine> {
    c.rows++;
    c[res.status]++;
    yield res;
    if (c.rows % every === 0) {
      const p = counts();
      d.onProgress?.(p);
      yield { progress: p };
    }
  }
  let failure: TwinmillError | undefined;
  try {
    for await (const r of rows) {
      window.push(apply(r));
      if (window.length >= (d.concurrency ?? 16)) yield* emit(await window.shift()!);
    }
  } catch (err) {
    if (!(err instanceof TwinmillError)) throw err;
    failure = err;
  }
  while (window.length > 0) yield* emit(await window.shift()!);
  if (failure) yield { error: { code: failure.code, message: failure.message } };
  yield { summary: { ...counts(), complete: failure === undefined } };
}

/** Apply one row; never throws (a failure is the row's result). */
async function applyRow(r: BulkRow, d: BulkDeps): Promise<BulkResult> {
  const id = typeof r.id === "string" ? r.id.slice(0, 128) : undefined;
  const failed = (code: string, message: string): BulkResult => ({
    row: r.row,
    ...(id === undefined ? {} : { id }),
    status: "failed",
    error: { code, message },
  });
  if (r.error) return failed(r.error.code, r.error.message);
  if (typeof r.id !== "string" || !isValidTwinId(r.id)) {
    return failed("bad_twin_id", "id must be 1-128 of A-Z a-z 0-9 _ - . :");
  }
  try {
    const attributes = checkAttributes(r.attributes, "attributes");
    const s = await d.twins.putAttributes(r.id, attributes);
    const created = s.version === 1;
    const res: BulkResult = { row: r.row, id: r.id, status: created ? "created" : "updated" };
    if (created && d.credentials) {
      try {
        res.token = (await d.credentials.create(r.id)).credentials.token;
      } catch (err) {
        res.error = errorOf(err, "The twin was created, but no token could be issued: ");
      }
    }
    return res;
  } catch (err) {
    const e = errorOf(err);
    return failed(e.code, e.message);
  }
}

const errorOf = (err: unknown, prefix = "") =>
  err instanceof TwinmillError ? { code: err.code, message: prefix + err.message } : {
    code: "internal",
    message: prefix + (err instanceof Error ? err.message : String(err)).slice(0, 200),
  };
