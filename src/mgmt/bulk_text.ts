/**
 * The text of a bulk request body: read as a stream within a byte bound, cut into CSV records
 * (RFC 4180: quoted fields may hold commas, `""` and line breaks) or into lines, each bounded
 * in length.
 * @module
 */
import { TwinmillError } from "../errors.ts";

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
