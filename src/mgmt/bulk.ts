/**
 * Bulk provisioning: twins from a CSV or NDJSON file, read as a stream and applied row by
 * row (a few at a time), with one result per row, progress lines and a summary. A bad row
 * never stops the others; the body, the rows and each row's length are bounded.
 *
 * CSV (RFC 4180): a header row with an `id` column; every other column is an attribute
 * (string values; an empty cell is no attribute); quoted fields may hold commas, `""` and
 * line breaks. NDJSON: one `{"id": "...", "attributes": {...}}` per line.
 *
 * Reading the body is in `bulk_text.ts` and `bulk_rows.ts`; this module applies the rows.
 * @module
 */
import { isValidTwinId } from "../../actors/validate.ts";
import { TwinmillError } from "../errors.ts";
import { checkAttributes } from "./provisioning_checks.ts";
import type { CredentialIssuer, ProvisionTwins } from "./provisioning_types.ts";
import type { BulkRow } from "./bulk_rows.ts";

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
