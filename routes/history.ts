/**
 * Time series from InfluxDB with InfluxQL over `/query` (answered by InfluxDB 1.x, 2.x via the
 * v1 compatibility API, and 3.x).
 * @module
 */
import { BadRequestError, TwinmillError, UnavailableError } from "../src/errors.ts";

/** Where history comes from. */
export interface HistorySource {
  url: string;
  api: "v1" | "v2";
  db: string;
  token?: string;
  /** HTTP client trusting `INFLUX_CA` (HTTPS with a private CA). */
  client?: Deno.HttpClient;
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

/** The times InfluxDB can hold (its nanosecond timestamps are 64-bit). */
export const INFLUX_TIME_RANGE = {
  min: Date.parse("1677-09-21T00:12:44Z"),
  max: Date.parse("2262-04-11T23:47:16Z"),
};

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};
/** Longest `every`: 520 weeks (InfluxQL overflows a little under 15,000). */
const MAX_EVERY_MS = 520 * UNIT_MS.w;

/**
 * Checks what InfluxDB would refuse, so that a user's mistake is a 400 naming the parameter
 * (not InfluxDB's error as a 502): the field `time` (InfluxQL's time column, not a field), a
 * field name with control characters (line protocol cannot write one, InfluxQL cannot quote it),
 * times InfluxDB cannot hold, an `every` of zero or longer than 520 weeks.
 */
export function checkHistoryQuery(q: HistoryQuery): void {
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(q.field)) {
    throw new BadRequestError(
      "field: a telemetry field name has no control characters",
      "bad_field",
    );
  }
  if (q.field.toLowerCase() === "time") {
    throw new BadRequestError(
      'field: "time" is the time of each point, not a telemetry field; name a field',
      "bad_field",
    );
  }
  for (const [k, v] of [["from", q.from], ["to", q.to]] as const) {
    const ms = v === undefined ? undefined : Date.parse(v);
    if (ms !== undefined && (ms < INFLUX_TIME_RANGE.min || ms > INFLUX_TIME_RANGE.max)) {
      throw new BadRequestError(
        `${k}: ${v} is outside the times InfluxDB can hold (1677-09-21 to 2262-04-11)`,
      );
    }
  }
  if (q.every !== undefined) {
    const m = /^(\d+)(ms|s|m|h|d|w)$/.exec(q.every);
    const ms = m ? Number(m[1]) * UNIT_MS[m[2]] : Number.NaN;
    if (!(ms >= 1 && ms <= MAX_EVERY_MS)) {
      throw new BadRequestError(`every: "${q.every}" must be between 1ms and 520w`);
    }
  }
}

/**
 * InfluxDB errors that come from the statement rather than from the server (its limits on
 * buckets or points, a query it cannot plan): the request's fault, a 400.
 */
const SERVER_SIDE = /database not found|retention policy not found|authoriz|permission|timeout/i;

function influxRefused(message: string, status?: number): TwinmillError {
  const text = message.slice(0, 300);
  if ((status === undefined || status === 400) && !SERVER_SIDE.test(text)) {
    return new BadRequestError(`InfluxDB cannot answer this query: ${text}`, "bad_history_query");
  }
  return new TwinmillError(
    "history_failed",
    502,
    status === undefined ? `InfluxDB: ${text}` : `InfluxDB answered ${status}: ${text}`,
  );
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
  checkHistoryQuery(q);
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
    res = await fetch(u, { headers, signal: AbortSignal.timeout(10_000), client: src.client });
  } catch (err) {
    throw new TwinmillError(
      "history_failed",
      502,
      `InfluxDB is unreachable: ${(err as Error).message}`,
    );
  }
  const text = await res.text();
  if (!res.ok) {
    let why = text;
    try {
      why = JSON.parse(text)?.error ?? text;
    } catch { /* not JSON: the text itself */ }
    throw influxRefused(String(why), res.status);
  }
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw new TwinmillError(
      "history_failed",
      502,
      `InfluxDB answered with no JSON: ${text.slice(0, 200)}`,
    );
  }
  const r = body.results?.[0];
  if (r?.error) throw influxRefused(String(r.error));
  const series = r?.series?.[0];
  const values: unknown[][] = series?.values ?? [];
  if (series && (series.columns?.[0] !== "time" || values.some(([t]) => !isEpochMs(t)))) {
    // VictoriaMetrics takes the writes but answers any `/query` with its list of databases
    throw new TwinmillError(
      "history_failed",
      502,
      `INFLUX_URL answered /query with no time series (columns ${
        JSON.stringify(series.columns ?? [])
      }): history needs InfluxQL (InfluxDB 1.x, 2.x through its v1 API, 3.x); ` +
        "VictoriaMetrics does not answer InfluxQL: query it with PromQL",
    );
  }
  return values.map(([t, v]) => ({ ts: new Date(t as number).toISOString(), value: v }));
}

/** A time InfluxDB answers with `epoch=ms`: ms since the epoch, within its range. */
function isEpochMs(t: unknown): boolean {
  return typeof t === "number" && t >= INFLUX_TIME_RANGE.min && t <= INFLUX_TIME_RANGE.max;
}
