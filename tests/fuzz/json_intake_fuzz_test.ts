/**
 * Property-based fuzzing (`npm:fast-check`) of the JSON intake (`actors/json_intake.ts`) and
 * the merge patch (`actors/json.ts`): random nesting, sizes, unicode, numbers (-0, 1e400,
 * NaN), prototype keys. The intake never throws, refuses exactly what is over its limits (an
 * independent recursive reference decides), and what it takes survives a JSON round trip;
 * the merge patch never leaves a null member, never pollutes a prototype and does not touch
 * its inputs. Case counts are fixed so the suite stays fast.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  checkJson,
  DEFAULT_JSON_LIMITS,
  type JsonLimits,
  type JsonViolationCode,
  readJson,
} from "../../actors/json_intake.ts";
import {
  computeDelta,
  deepEqual,
  isObject,
  type JsonObject,
  mergePatch,
} from "../../actors/json.ts";

const CODES: JsonViolationCode[] = [
  "not_json",
  "payload_too_deep",
  "too_many_keys",
  "string_too_long",
  "array_too_long",
  "bad_number",
  "bad_key",
];

const PROTO_KEYS = ["__proto__", "constructor", "prototype", "toString", "hasOwnProperty"];
const key = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.string({ unit: "binary", maxLength: 6 }),
  fc.constantFrom(...PROTO_KEYS),
);
const leaf = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constant(-0),
  fc.boolean(),
  fc.constant(null),
  fc.string({ unit: "binary", maxLength: 30 }),
  fc.string({ maxLength: 300 }),
);
/** JSON-ish values: nested, unicode keys, prototype keys, any double (NaN, ±Infinity, -0). */
const value: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    leaf,
    fc.array(tie("v"), { maxLength: 6 }),
    fc.dictionary(key, tie("v"), { maxKeys: 6, noNullPrototype: true }),
  ),
})).v;

/** Text that is JSON most of the time: a value's JSON, spliced with numbers JS cannot hold. */
const text = fc.oneof(
  value.map((v) => JSON.stringify(v) ?? "null"),
  fc.tuple(value, fc.constantFrom("1e400", "-1e400", "1E+999", "-0", "5e-324", "NaN", "[[[["))
    .map(([v, n]) => (JSON.stringify(v) ?? "null").replace(/(?<=[:\[,])(-?\d+(\.\d+)?)/, n)),
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.tuple(fc.nat(300), fc.constantFrom("[", '{"a":'), leaf).map(([d, open, l]) =>
    open.repeat(d) + JSON.stringify(l) + (open === "[" ? "]" : "}").repeat(d)
  ),
);

const limits: fc.Arbitrary<JsonLimits> = fc.record({
  maxDepth: fc.integer({ min: 1, max: 8 }),
  maxKeys: fc.integer({ min: 1, max: 8 }),
  maxString: fc.integer({ min: 1, max: 64 }),
  maxArray: fc.integer({ min: 1, max: 8 }),
});

/** The reference: what is over which limit, decided recursively (fuzzed values are small). */
function reference(v: unknown, l: JsonLimits, depth = 1): JsonViolationCode | null {
  if (typeof v === "number") return Number.isFinite(v) ? null : "bad_number";
  if (typeof v === "string") return v.length > l.maxString ? "string_too_long" : null;
  if (v === null || typeof v !== "object") return null;
  if (depth > l.maxDepth) return "payload_too_deep";
  const entries = Array.isArray(v) ? v.map((x) => ["", x] as const) : Object.entries(v);
  if (Array.isArray(v) && v.length > l.maxArray) return "array_too_long";
  if (!Array.isArray(v) && entries.length > l.maxKeys) return "too_many_keys";
  for (const [k, x] of entries) {
    if (k === "__proto__") return "bad_key";
    if (k.length > l.maxString) return "string_too_long";
    const r = reference(x, l, depth + 1);
    if (r) return r;
  }
  return null;
}

Deno.test("fuzz: the intake never throws; it answers a value or one of its own codes", () => {
  fc.assert(
    fc.property(text, fc.option(limits, { nil: undefined }), (t, l) => {
      const r = readJson(t, l ?? DEFAULT_JSON_LIMITS);
      if (r.ok) {
        // what it takes is plain JSON within the limits, and survives a round trip
        assert.equal(checkJson(r.value, l ?? DEFAULT_JSON_LIMITS), null);
        assert.ok(deepEqual(JSON.parse(JSON.stringify(r.value)), r.value));
      } else {
        assert.ok(CODES.includes(r.violation.code), r.violation.code);
        assert.equal(typeof r.violation.message, "string");
        assert.ok(r.violation.path.startsWith("$"));
      }
    }),
    { numRuns: 3000 },
  );
});

Deno.test("fuzz: the intake refuses exactly what is over a limit (a recursive reference agrees)", () => {
  fc.assert(
    fc.property(value, limits, (v, l) => {
      const t = JSON.stringify(v);
      if (t === undefined) return;
      const parsed = JSON.parse(t); // NaN/Infinity become null in text, as any JSON sender
      const expected = reference(parsed, l);
      const got = readJson(t, l);
      assert.equal(got.ok, expected === null, `${t.slice(0, 200)} → ${expected}`);
      // checking the parsed value (not text) gives the same verdict
      assert.equal(checkJson(parsed, l) === null, expected === null);
      // and the value itself: NaN and ±Infinity are bad_number, never null
      assert.equal(checkJson(v, l) === null, reference(v, l) === null);
    }),
    { numRuns: 3000 },
  );
});

Deno.test("fuzz: nesting of any depth is refused iff deeper than the limit, without recursion", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.array(fc.constantFrom("[", "{"), { maxLength: 80 }),
        fc.array(fc.constantFrom("[", "{"), { maxLength: 20_000, size: "max" }),
      ),
      fc.integer({ min: 1, max: 64 }),
      (opens, maxDepth) => {
        const t = opens.map((o) => o === "[" ? "[" : '{"k":').join("") + "1" +
          opens.reverse().map((o) => o === "[" ? "]" : "}").join("");
        const r = readJson(t, { ...DEFAULT_JSON_LIMITS, maxDepth });
        assert.equal(r.ok, opens.length <= maxDepth);
        if (!r.ok) assert.equal(r.violation.code, "payload_too_deep");
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("fuzz: numbers — finite ones kept exactly (-0 included), 1e400 and the like refused", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => String(d)),
        fc.constantFrom(
          "1e400",
          "-1e400",
          "1E+999",
          "-0",
          "-0.0",
          "5e-324",
          "1.7976931348623157e308",
        ),
        fc.tuple(fc.integer({ min: -9, max: 9 }), fc.integer({ min: -999, max: 999 }))
          .map(([m, e]) => `${m}e${e}`),
      ),
      (n) => {
        const r = readJson(`{"n":${n}}`);
        const v = Number(n);
        if (Number.isFinite(v)) {
          assert.ok(r.ok, n);
          assert.ok(Object.is((r.value as { n: number }).n, JSON.parse(n)));
        } else {
          assert.ok(!r.ok && r.violation.code === "bad_number", n);
        }
      },
    ),
    { numRuns: 2000 },
  );
});

const object = value.filter(isObject) as fc.Arbitrary<JsonObject>;
/** An object as JSON carries it (what the intake hands on): no NaN or ±Infinity, -0 is 0. */
const jsonObject = object.map((o) => JSON.parse(JSON.stringify(o)) as JsonObject);

/** Every member of `o` reached through objects (arrays are values, kept whole). */
function* members(o: JsonObject): Generator<[string, unknown]> {
  for (const [k, v] of Object.entries(o)) {
    yield [k, v];
    if (isObject(v)) yield* members(v);
  }
}

/** Own `__proto__` keys are data: their values parse back as they were written. */
const withProto = fc.tuple(object, fc.constantFrom(...PROTO_KEYS), value).map(([o, k, v]) => {
  const rest = JSON.stringify(o).slice(1); // '}' or '"a":1}'
  const first = `${JSON.stringify(k)}:${JSON.stringify(v) ?? "1"}`;
  return JSON.parse(`{${first}${rest === "}" ? "" : ","}${rest}`) as JsonObject;
});

Deno.test("fuzz: merge patch — no null member, idempotent, inputs untouched, no prototype pollution", () => {
  fc.assert(
    fc.property(
      fc.oneof(jsonObject, withProto),
      fc.oneof(jsonObject, withProto),
      (raw, patch) => {
        // a stored state: what patches made of an empty object (no null members)
        const target = mergePatch({}, raw);
        const t0 = structuredClone(target);
        const p0 = structuredClone(patch);
        const out = mergePatch(target, patch);
        // RFC 7396: null deletes; no object member of the result is null
        for (const [, v] of members(out)) assert.notEqual(v, null);
        // applying the same patch again changes nothing
        assert.ok(deepEqual(mergePatch(out, patch), out));
        // inputs are not modified
        assert.ok(deepEqual(target, t0) && deepEqual(patch, p0));
        // a prototype key stays data: plain prototypes everywhere, nothing global changed
        assert.equal(Object.getPrototypeOf(out), Object.prototype);
        for (const [, v] of members(out)) {
          if (isObject(v)) assert.equal(Object.getPrototypeOf(v), Object.prototype);
        }
        if (Object.hasOwn(patch, "__proto__") && patch["__proto__"] !== null) {
          assert.ok(Object.hasOwn(out, "__proto__"));
        }
        assert.equal(Object.keys(Object.prototype).length, 0);
        assert.equal(({} as Record<string, unknown>).polluted, undefined);
        // the desired/reported delta of a state with itself is empty
        assert.deepEqual(Object.keys(computeDelta(out, out)), []);
      },
    ),
    { numRuns: 2000 },
  );
});

Deno.test("fuzz: a prototype key is refused by the intake or kept as data, never pollutes", () => {
  fc.assert(
    fc.property(withProto, (o) => {
      const t = JSON.stringify(o);
      const r = readJson(t);
      if (Object.hasOwn(o, "__proto__")) {
        assert.ok(!r.ok && r.violation.code === "bad_key");
      } else if (r.ok) {
        const out = mergePatch({}, r.value as JsonObject);
        for (const k of Object.keys(o)) assert.ok(Object.hasOwn(out, k) || o[k] === null, k);
      }
      assert.equal(Object.keys(Object.prototype).length, 0);
    }),
    { numRuns: 1000 },
  );
});
