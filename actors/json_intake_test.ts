import assert from "node:assert/strict";
import { checkJson, DEFAULT_JSON_LIMITS, type JsonLimits, readJson } from "./json_intake.ts";

const nest = (depth: number, open = "[", close = "]") =>
  `${open.repeat(depth)}${close.repeat(depth)}`;

function refused(text: string, limits: JsonLimits = DEFAULT_JSON_LIMITS) {
  const r = readJson(text, limits);
  assert.ok(!r.ok, `refused: ${text.slice(0, 80)}`);
  return r.violation;
}

Deno.test("depth: 32 levels are taken, 33 are payload_too_deep naming the limit", () => {
  // the top-level object is level 1: {"a": + 31 arrays = 32 levels
  assert.ok(readJson(`{"a":${nest(31)}}`).ok);
  const v = refused(`{"a":${nest(32)}}`);
  assert.equal(v.code, "payload_too_deep");
  assert.match(v.message, /deeper than 32 levels \(TWINMILL_JSON_MAX_DEPTH\)/);
  assert.equal(refused(nest(33, '{"a":', "}")).code, "payload_too_deep");
});

Deno.test("depth: 10,000 and 1,000,000 levels are refused quickly, before parsing", () => {
  const t0 = performance.now();
  assert.equal(refused(`{"a":${nest(10_000)}}`).code, "payload_too_deep");
  assert.equal(refused(nest(1_000_000)).code, "payload_too_deep");
  // unbalanced (not even JSON) is refused by depth first, still without building anything
  assert.equal(refused("[".repeat(100_000)).code, "payload_too_deep");
  assert.ok(performance.now() - t0 < 500, `${performance.now() - t0} ms`);
});

Deno.test("depth: brackets inside strings (escaped quotes included) do not count", () => {
  const s = `{"a":"${"[".repeat(100)}\\"${"{".repeat(100)}"}`;
  const r = readJson(s);
  assert.ok(r.ok);
  assert.equal((r.value as { a: string }).a.length, 201);
});

Deno.test("depth: checkJson of a value 100,000 deep is iterative (no stack overflow)", () => {
  let deep: unknown = 1;
  for (let i = 0; i < 100_000; i++) deep = { a: deep };
  assert.equal(checkJson(deep)?.code, "payload_too_deep");
  let wide: unknown = [];
  for (let i = 0; i < 100_000; i++) wide = [wide];
  assert.equal(checkJson(wide, { ...DEFAULT_JSON_LIMITS, maxDepth: 200_000 }), null);
});

Deno.test("keys per object: 1,000 taken, 1,001 too_many_keys", () => {
  const obj = (n: number) =>
    JSON.stringify(Object.fromEntries([...Array(n)].map((_, i) => [`k${i}`, i])));
  assert.ok(readJson(obj(1000)).ok);
  const v = refused(`{"nested":${obj(1001)}}`);
  assert.equal(v.code, "too_many_keys");
  assert.match(v.message, /1001 keys, more than 1000 .* at \$\.nested$/);
});

Deno.test("strings: values and keys over the limit are string_too_long", () => {
  const limits = { ...DEFAULT_JSON_LIMITS, maxString: 10 };
  assert.ok(readJson('{"abcdefghij":"0123456789"}', limits).ok);
  assert.equal(refused('{"a":"0123456789x"}', limits).code, "string_too_long");
  assert.equal(refused('{"abcdefghijk":1}', limits).code, "string_too_long");
  assert.equal(refused('["ok",["0123456789x"]]', limits).path, "$[1][0]");
  assert.ok(readJson(JSON.stringify({ s: "x".repeat(65_536) })).ok);
  assert.equal(refused(JSON.stringify({ s: "x".repeat(65_537) })).code, "string_too_long");
});

Deno.test("arrays: over the limit is array_too_long", () => {
  assert.ok(readJson(JSON.stringify({ a: Array(10_000).fill(0) })).ok);
  const v = refused(JSON.stringify({ a: Array(10_001).fill(0) }));
  assert.equal(v.code, "array_too_long");
  assert.equal(v.path, "$.a");
});

Deno.test("numbers: 1e400, -1e400 (and NaN/Infinity values) are bad_number; -0 and 1e308 are fine", () => {
  assert.equal(refused('{"n":1e400}').code, "bad_number");
  assert.equal(refused('{"n":[1,-1e400]}').path, "$.n[1]");
  assert.equal(refused("1e400").code, "bad_number");
  assert.equal(checkJson({ n: NaN })?.code, "bad_number");
  assert.equal(checkJson([Infinity])?.code, "bad_number");
  assert.ok(readJson('{"n":-0,"m":1e308,"o":5e-324}').ok);
});

Deno.test("prototype keys: __proto__ is bad_key; constructor and prototype are data", () => {
  const v = refused('{"a":{"__proto__":{"polluted":true}}}');
  assert.equal(v.code, "bad_key");
  assert.equal(v.path, "$.a.__proto__");
  const r = readJson('{"constructor":{"prototype":{"x":1}},"toString":"s"}');
  assert.ok(r.ok);
  assert.deepEqual(Object.keys(r.value as object), ["constructor", "toString"]);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

Deno.test("not JSON is not_json; scalars and empty containers are fine", () => {
  assert.equal(refused("{").code, "not_json");
  assert.equal(refused("").code, "not_json");
  assert.equal(refused("{'a':1}").code, "not_json");
  for (const ok of ["1", '"s"', "null", "true", "[]", "{}"]) assert.ok(readJson(ok).ok, ok);
});
