/**
 * Time series from InfluxDB with InfluxQL over `/query` (answered by InfluxDB 1.x, 2.x via the
 * v1 compatibility API, and 3.x).
 * @module
 */
import { TwinmillError, UnavailableError } from "../src/errors.ts";

/** Where history comes from. */
export interface HistorySource {
  url: string;
  api: "v1" | "v2";
  db: string;
  token?: string;
}

/** A history request (already validated). */
export interface HistoryQuery {
  twin: string;
  field: string;
  from: string;
  to?: string;
  every?: string;
  agg: string;
}

const quoteIdent = (s: string) => `"${s.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
const quoteStr = (s: string) => `'${s.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;

/** The InfluxQL for a history query. */
export function historyInfluxQL(q: HistoryQuery): string {
  const sel = q.every ? `${q.agg}(${quoteIdent(q.field)})` : quoteIdent(q.field);
  let s = `SELECT ${sel} AS "value" FROM "telemetry" WHERE "device" = ${quoteStr(q.twin)}` +
    ` AND time >= ${quoteStr(q.from)}`;
  if (q.to) s += ` AND time <= ${quoteStr(q.to)}`;
  if (q.every) s += ` GROUP BY time(${q.every}) fill(none)`;
  return s + " LIMIT 10000";
}

/** Run a history query; returns `[{ts, value}]`. */
export async function queryHistory(
  src: HistorySource | undefined,
  q: HistoryQuery,
): Promise<Array<{ ts: string; value: unknown }>> {
  if (!src) {
    throw new UnavailableError(
      "history_unavailable",
      "History needs InfluxDB: set INFLUX_URL to enable it",
    );
  }
  const u = new URL(`${src.url}/query`);
  u.searchParams.set("db", src.db);
  u.searchParams.set("q", historyInfluxQL(q));
  u.searchParams.set("epoch", "ms");
  const headers: HeadersInit = src.token ? { authorization: `Token ${src.token}` } : {};
  let res: Response;
  try {
    res = await fetch(u, { headers, signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw new TwinmillError(
      "history_failed",
      502,
      `InfluxDB is unreachable: ${(err as Error).message}`,
    );
  }
  const text = await res.text();
  if (!res.ok) {
    throw new TwinmillError(
      "history_failed",
      502,
      `InfluxDB answered ${res.status}: ${text.slice(0, 200)}`,
    );
  }
  const body = JSON.parse(text);
  const r = body.results?.[0];
  if (r?.error) throw new TwinmillError("history_failed", 502, `InfluxDB: ${r.error}`);
  const values: unknown[][] = r?.series?.[0]?.values ?? [];
  return values.map(([t, v]) => ({ ts: new Date(t as number).toISOString(), value: v }));
}
