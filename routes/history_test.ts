import assert from "node:assert/strict";
import { checkHistoryQuery, historyInfluxQL, type HistoryQuery } from "./history.ts";

const q = (over: Partial<HistoryQuery>): HistoryQuery => ({
  twin: "t",
  field: "temp",
  from: "2024-01-01T00:00:00.000Z",
  agg: "mean",
  ...over,
});

const refused = (over: Partial<HistoryQuery>, code: string) =>
  assert.throws(
    () => checkHistoryQuery(q(over)),
    (e: { code?: string; status?: number }) => e.code === code && e.status === 400,
    JSON.stringify(over),
  );

Deno.test("history: what InfluxDB cannot take is refused before it is asked", () => {
  checkHistoryQuery(q({}));
  checkHistoryQuery(q({ every: "1ms" }));
  checkHistoryQuery(q({ every: "520w", to: "2262-04-11T00:00:00.000Z" }));
  refused({ field: "time" }, "bad_field");
  refused({ field: "Time" }, "bad_field");
  refused({ field: "a\nb" }, "bad_field");
  refused({ from: "1677-01-01T00:00:00.000Z" }, "bad_request");
  refused({ to: "2263-01-01T00:00:00.000Z" }, "bad_request");
  refused({ every: "0s" }, "bad_request");
  refused({ every: "521w" }, "bad_request");
});

Deno.test("history: field names are quoted identifiers, twin ids quoted strings", () => {
  const s = historyInfluxQL(q({ field: 'a"b\\c', twin: "x'y" }));
  assert.match(s, /^SELECT "a\\"b\\\\c" AS "value" FROM "telemetry" WHERE "device" = 'x\\'y'/);
});
