import assert from "node:assert/strict";
import { nanoTimestamp, type Point, toLineProtocol } from "./line_protocol.ts";

const pt = (over: Partial<Point>): Point => ({
  measurement: "telemetry",
  tags: {},
  fields: { temp: 1.5 },
  ts: 1_700_000_000_123,
  ...over,
});

Deno.test("toLineProtocol: basic point with sorted tags and ms timestamp", () => {
  const line = toLineProtocol(pt({ tags: { site: "s1", device: "press-7", line: "l2" } }));
  assert.equal(line, "telemetry,device=press-7,line=l2,site=s1 temp=1.5 1700000000123000000");
});

Deno.test("toLineProtocol: empty tag values are omitted", () => {
  assert.equal(
    toLineProtocol(pt({ tags: { device: "d", site: "" } })),
    "telemetry,device=d temp=1.5 1700000000123000000",
  );
});

Deno.test("toLineProtocol: spaces, commas and equals in measurement and tags", () => {
  const line = toLineProtocol(pt({
    measurement: "my meas,x=1",
    tags: { "dev ice": "a b,c=d", "k=ey,": "v" },
    fields: { "fi eld,=": 2 },
  }));
  assert.equal(
    line,
    "my\\ meas\\,x=1,dev\\ ice=a\\ b\\,c\\=d,k\\=ey\\,=v fi\\ eld\\,\\==2 1700000000123000000",
  );
});

Deno.test("toLineProtocol: backslashes in names never swallow a separator", () => {
  assert.equal(
    toLineProtocol(pt({ tags: { device: "a\\" } })),
    "telemetry,device=a\\\\ temp=1.5 1700000000123000000",
  );
  assert.equal(
    toLineProtocol(pt({ tags: { device: "a\\,b" } })),
    "telemetry,device=a\\\\\\,b temp=1.5 1700000000123000000",
  );
  // a backslash before an ordinary character stays literal
  assert.equal(
    toLineProtocol(pt({ tags: { device: "C:\\dev" } })),
    "telemetry,device=C:\\dev temp=1.5 1700000000123000000",
  );
});

Deno.test("toLineProtocol: newlines in names are escaped, never break the line", () => {
  const line = toLineProtocol(pt({ tags: { device: "a\nb" } }));
  assert.ok(!line.includes("\n"));
  assert.equal(line, "telemetry,device=a\\nb temp=1.5 1700000000123000000");
});

Deno.test("toLineProtocol: string fields quote and escape quotes and backslashes", () => {
  const line = toLineProtocol(pt({ fields: { s: 'say "hi" \\o/', plain: "a b,c=d" } }));
  assert.equal(line, 'telemetry s="say \\"hi\\" \\\\o/",plain="a b,c=d" 1700000000123000000');
});

Deno.test("toLineProtocol: numbers are floats (never i), booleans true/false", () => {
  const line = toLineProtocol(pt({ fields: { a: 3, b: -0.25, c: 1e21, d: true, e: false } }));
  assert.equal(line, "telemetry a=3,b=-0.25,c=1e+21,d=true,e=false 1700000000123000000");
  assert.ok(!/\di\b/.test(line));
});

Deno.test("toLineProtocol: non-finite numbers are dropped", () => {
  assert.equal(
    toLineProtocol(pt({ fields: { a: NaN, b: 2, c: Infinity, d: -Infinity } })),
    "telemetry b=2 1700000000123000000",
  );
});

Deno.test("toLineProtocol: no field left → empty string", () => {
  assert.equal(toLineProtocol(pt({ fields: { a: NaN } })), "");
  assert.equal(toLineProtocol(pt({ fields: {} })), "");
  assert.equal(toLineProtocol(pt({ measurement: "" })), "");
});

Deno.test("toLineProtocol: fractional timestamps are truncated to integer ms", () => {
  assert.equal(toLineProtocol(pt({ ts: 1000.9 })), "telemetry temp=1.5 1000000000");
});

Deno.test("toLineProtocol: the sub-millisecond part makes two points of one millisecond distinct", () => {
  const a = toLineProtocol(pt({ subMs: 41 }));
  const b = toLineProtocol(pt({ subMs: 42 }));
  assert.equal(a, "telemetry temp=1.5 1700000000123000041");
  assert.equal(b, "telemetry temp=1.5 1700000000123000042");
  assert.equal(toLineProtocol(pt({ subMs: 999_999 })), "telemetry temp=1.5 1700000000123999999");
});

Deno.test("nanoTimestamp: exact decimal nanoseconds, out-of-range sub-ms parts ignored", () => {
  assert.equal(nanoTimestamp(0), "0");
  assert.equal(nanoTimestamp(0, 7), "7");
  assert.equal(nanoTimestamp(1, 7), "1000007");
  assert.equal(nanoTimestamp(-1, 7), "-999993");
  assert.equal(nanoTimestamp(5, 1_000_000), "5000000");
  assert.equal(nanoTimestamp(5, 1.5), "5000000");
  // beyond 2^53 ns: still exact (no float rounding)
  assert.equal(BigInt(nanoTimestamp(1_799_999_999_999, 123_456)), 1_799_999_999_999_123_456n);
});

Deno.test("toLineProtocol: a cached name is escaped for its place (measurement or key)", () => {
  const p = pt({ measurement: "a=b c", tags: { "a=b c": "a=b c" }, fields: { "a=b c": 1 } });
  const line = "a=b\\ c,a\\=b\\ c=a\\=b\\ c a\\=b\\ c=1 1700000000123000000";
  assert.equal(toLineProtocol(p), line);
  assert.equal(toLineProtocol(p), line, "same again, from the caches");
  assert.equal(
    toLineProtocol(pt({ tags: { b: "2", a: "1" } })),
    toLineProtocol(pt({ tags: { a: "1", b: "2" } })),
  );
});

Deno.test("toLineProtocol: tags from MQTT 5 user properties (any UTF-8) are escaped, one line", () => {
  const line = toLineProtocol({
    measurement: "telemetry",
    tags: { device: "d", bay: "b 2,x=\\y", shift: "nü\nit" },
    fields: { temp: 1 },
    ts: 5,
    subMs: 7,
  });
  assert.equal(line, "telemetry,bay=b\\ 2\\,x\\=\\y,device=d,shift=nü\\nit temp=1 5000007");
  assert.equal(line.split("\n").length, 1);
});
