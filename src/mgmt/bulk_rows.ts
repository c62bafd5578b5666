/**
 * The rows of a bulk request: a CSV file (a header row with an `id` column, every other
 * column an attribute) or NDJSON (`{"id", "attributes"}` per line), within the request's
 * bounds. A bad row becomes a row with an error; a bound passed ends the rows.
 * @module
 */
import { readJson } from "../../actors/json_intake.ts";
import { BadRequestError } from "../errors.ts";
import { boundedText, BulkLimitError, csvRecords, textLines } from "./bulk_text.ts";

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
const MAX_COLUMNS = 65;

/** One row as read: its line number (the line it starts on) and content, or why it is bad. */
export interface BulkRow {
  row: number;
  id?: unknown;
  attributes?: unknown;
  error?: { code: string; message: string };
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
