import assert from "node:assert/strict";
import { formatPath, parseProfile, type ProfileIssue } from "./profile.ts";

const overheat = {
  id: "overheat",
  kind: "threshold",
  field: "temp",
  op: ">",
  value: 80,
  clear: 75,
  forSeconds: 0,
  severity: "critical",
};

function issues(input: unknown): ProfileIssue[] {
  const r = parseProfile(input);
  assert.equal(r.ok, false, "expected the profile to be refused");
  return r.ok ? [] : r.issues;
}

function paths(input: unknown): string[] {
  return issues(input).map((i) => i.path);
}

Deno.test("the contract's canonical profile parses and compiles", () => {
  const r = parseProfile({ rules: [overheat] });
  assert.ok(r.ok);
  assert.deepEqual(r.profile.source, { rules: [{ ...overheat, enabled: true }] });
  assert.equal(r.profile.enabled.length, 1);
  assert.equal(r.profile.byId.get("overheat")!.kind, "threshold");
});

Deno.test("defaults are filled in", () => {
  const r = parseProfile({
    description: "press",
    rules: [
      { id: "t", kind: "threshold", field: "temp", op: "<", value: 1 },
      { id: "r", kind: "rate", field: "temp", limit: 1, windowSeconds: 5 },
      { id: "w", kind: "window", fields: ["temp"], seconds: 60 },
      { id: "a", kind: "anomaly", field: "temp" },
      { id: "e", kind: "expression", expr: "temp > 1", actions: [{ type: "command", name: "x" }] },
    ],
  });
  assert.ok(r.ok);
  const [t, rate, w, a, e] = r.profile.source.rules;
  assert.equal(r.profile.source.description, "press");
  assert.deepEqual(t, {
    id: "t",
    kind: "threshold",
    field: "temp",
    op: "<",
    value: 1,
    forSeconds: 0,
    severity: "major",
    enabled: true,
  });
  assert.equal(rate.kind === "rate" && rate.direction, "both");
  assert.deepEqual(w.kind === "window" && [w.aggs, w.measurement], [
    ["avg", "min", "max", "count", "last"],
    "rollup",
  ]);
  assert.deepEqual(a.kind === "anomaly" && [a.alpha, a.zLimit, a.warmup], [0.1, 3, 20]);
  assert.deepEqual(e.actions, [{ on: "raise", type: "command", name: "x" }]);
});

Deno.test("issues name the bad field by its path", () => {
  assert.deepEqual(paths({ rules: [overheat, overheat, { ...overheat, id: "x", op: "=>" }] }), [
    "rules[2].op",
    "rules[1].id",
  ]);
  assert.deepEqual(issues({ rules: [overheat, overheat] }), [
    { path: "rules[1].id", message: 'Duplicate rule id "overheat" (also rules[0])' },
  ]);
  assert.deepEqual(paths({ rules: [{ ...overheat, id: "a:b" }] }), ["rules[0].id"]);
  assert.deepEqual(paths({ rules: [{ ...overheat, id: "x".repeat(65) }] }), ["rules[0].id"]);
  for (const id of ["__proto__", "constructor", "toString"]) {
    assert.deepEqual(issues({ rules: [{ ...overheat, id }] }), [
      { path: "rules[0].id", message: "Reserved name" },
    ]);
  }
  assert.deepEqual(paths({ rules: [{ ...overheat, kind: "magic" }] }), ["rules[0].kind"]);
  assert.deepEqual(issues({ rules: [{ ...overheat, forSecond: 3 }] }), [
    { path: "rules[0].forSecond", message: "Unknown field" },
  ]);
  assert.deepEqual(paths({ rules: [{ ...overheat, severity: "fatal" }] }), ["rules[0].severity"]);
  assert.deepEqual(paths({ rules: [{ ...overheat, field: "" }] }), ["rules[0].field"]);
  assert.deepEqual(
    paths({ rules: [{ id: "r", kind: "rate", field: "t", limit: 0, windowSeconds: 1 }] }),
    [
      "rules[0].limit",
    ],
  );
  assert.deepEqual(paths({ rules: [{ id: "a", kind: "anomaly", field: "t", alpha: 0 }] }), [
    "rules[0].alpha",
  ]);
  assert.deepEqual(paths({ rules: [{ id: "a", kind: "anomaly", field: "t", alpha: 1.5 }] }), [
    "rules[0].alpha",
  ]);
  assert.deepEqual(paths({ rules: [{ id: "s", kind: "stale", seconds: 0 }] }), [
    "rules[0].seconds",
  ]);
  assert.deepEqual(paths({ rules: [{ id: "w", kind: "window", fields: [], seconds: 60 }] }), [
    "rules[0].fields",
  ]);
  assert.deepEqual(
    paths({ rules: [{ id: "w", kind: "window", fields: Array(21).fill("a"), seconds: 60 }] }),
    ["rules[0].fields"],
  );
  assert.deepEqual(paths({ rules: [{ id: "w", kind: "window", fields: ["a"], seconds: 0.5 }] }), [
    "rules[0].seconds",
  ]);
  assert.deepEqual(
    paths({ rules: [{ id: "w", kind: "window", fields: ["a"], seconds: 9, aggs: ["p99"] }] }),
    [
      "rules[0].aggs[0]",
    ],
  );
  assert.deepEqual(paths({ rules: [{ id: "d", kind: "deadband", field: "a", band: -1 }] }), [
    "rules[0].band",
  ]);
  assert.deepEqual(paths({ rules: 5 }), ["rules"]);
  assert.deepEqual(paths({}), ["rules"]);
  assert.deepEqual(paths({ rules: [], extra: 1 }), ["extra"]);
  assert.deepEqual(paths([1]), [""]);
});

Deno.test("hysteresis must lie on the clearing side of the value", () => {
  const clearIssue = (op: string, clear: number) =>
    parseProfile({ rules: [{ ...overheat, op, clear }] });
  assert.deepEqual(issues({ rules: [{ ...overheat, clear: 85 }] }), [
    { path: "rules[0].clear", message: 'With op ">" the clear level must be <= 80, got 85' },
  ]);
  assert.ok(clearIssue(">", 80).ok);
  assert.equal(clearIssue(">=", 80).ok, false); // would flap at exactly 80
  assert.ok(clearIssue(">=", 79).ok);
  assert.equal(clearIssue("<", 79).ok, false);
  assert.ok(clearIssue("<", 80).ok);
  assert.equal(clearIssue("<=", 80).ok, false);
  assert.ok(clearIssue("<=", 81).ok);
  assert.deepEqual(issues({ rules: [{ ...overheat, op: "==", clear: 1 }] }), [
    { path: "rules[0].clear", message: 'Hysteresis needs an ordering op, not "=="' },
  ]);
});

Deno.test("expressions are parsed and checked when the profile is stored", () => {
  const expr = (e: string) => ({ rules: [{ id: "e", kind: "expression", expr: e }] });
  assert.deepEqual(issues(expr("temp > 80 && (x))")), [
    { path: "rules[0].expr", message: 'Unexpected token ")" at 16' },
  ]);
  assert.deepEqual(issues(expr('"a" * 2 > 1')), [
    { path: "rules[0].expr", message: 'Operator "*" needs numbers, got string at 4' },
  ]);
  assert.deepEqual(issues(expr("temp + 1")), [
    { path: "rules[0].expr", message: "Expression yields a number, not a boolean at 0" },
  ]);
  assert.deepEqual(paths(expr("a > " + "1".repeat(1000))), ["rules[0].expr"]);
  assert.deepEqual(paths(expr("")), ["rules[0].expr"]);
});

Deno.test("actions: shapes, URL scheme, header map, at most 10, only on alarm rules", () => {
  const withActions = (actions: unknown[], rule: object = overheat) => ({
    rules: [{ ...rule, actions }],
  });
  const r = parseProfile(withActions([
    { type: "webhook", url: "https://hooks.example.com/a", headers: { "X-Key": "s3cret" } },
    { on: "clear", type: "desired", patch: { fan: "auto" } },
  ]));
  assert.ok(r.ok);
  assert.equal(r.profile.rules[0].onRaise.length, 1);
  assert.equal(r.profile.rules[0].onClear.length, 1);
  assert.deepEqual(paths(withActions([{ type: "webhook", url: "ftp://x/y" }])), [
    "rules[0].actions[0].url",
  ]);
  assert.deepEqual(
    paths(withActions([{ type: "webhook", url: "http://x", headers: { "X-Key": 1 } }])),
    ['rules[0].actions[0].headers["X-Key"]'],
  );
  assert.deepEqual(paths(withActions([{ type: "command" }])), ["rules[0].actions[0].name"]);
  assert.deepEqual(paths(withActions([{ type: "desired", patch: [1] }])), [
    "rules[0].actions[0].patch",
  ]);
  assert.deepEqual(paths(withActions([{ on: "later", type: "desired", patch: {} }])), [
    "rules[0].actions[0].on",
  ]);
  assert.deepEqual(paths(withActions(Array(11).fill({ type: "command", name: "x" }))), [
    "rules[0].actions",
  ]);
  assert.deepEqual(
    issues(withActions([{ type: "command", name: "x" }], {
      id: "w",
      kind: "window",
      fields: ["a"],
      seconds: 60,
    })),
    [{
      path: "rules[0].actions",
      message: "A window rule raises no alarm, so it cannot run actions",
    }],
  );
});

Deno.test("limits: 50 rules, 64 KiB, one deadband per field", () => {
  const many = Array.from({ length: 51 }, (_, i) => ({ ...overheat, id: `r${i}` }));
  assert.deepEqual(paths({ rules: many }), ["rules"]);
  assert.ok(parseProfile({ rules: many.slice(0, 50) }).ok);
  const big = issues({
    description: "x".repeat(900),
    rules: many.slice(0, 50).map((r) => ({
      ...r,
      field: "f".repeat(128),
      actions: [{ type: "desired", patch: { p: "y".repeat(1400) } }],
    })),
  });
  assert.equal(big.length, 1);
  assert.equal(big[0].path, "");
  assert.match(big[0].message, /^Profile is \d+ bytes as JSON, more than 65536$/);
  assert.deepEqual(
    issues({
      rules: [
        { id: "a", kind: "deadband", field: "t", band: 1 },
        { id: "b", kind: "deadband", field: "t", band: 2 },
      ],
    }),
    [{ path: "rules[1].field", message: 'Field "t" already has a deadband rule (rules[0])' }],
  );
});

Deno.test("every issue is reported at once, rule by rule", () => {
  assert.deepEqual(
    paths({
      rules: [
        { ...overheat, op: "~" },
        { ...overheat, id: "b", clear: 99 },
        { id: "c", kind: "expression", expr: "(" },
        { ...overheat, id: "b" },
      ],
    }),
    ["rules[0].op", "rules[1].clear", "rules[2].expr", "rules[3].id"],
  );
});

Deno.test("rule fingerprints change only with the rule's own definition", () => {
  const a = parseProfile({ rules: [overheat, { id: "s", kind: "stale", seconds: 5 }] });
  const b = parseProfile({
    description: "changed",
    rules: [{ ...overheat, value: 81 }, { seconds: 5, kind: "stale", id: "s" }],
  });
  assert.ok(a.ok && b.ok);
  assert.notEqual(a.profile.hash, b.profile.hash);
  assert.notEqual(a.profile.byId.get("overheat")!.hash, b.profile.byId.get("overheat")!.hash);
  assert.equal(a.profile.byId.get("s")!.hash, b.profile.byId.get("s")!.hash);
});

Deno.test("formatPath", () => {
  assert.equal(formatPath(["rules", 2, "op"]), "rules[2].op");
  assert.equal(formatPath(["rules", 0, "headers", "X-Key"]), 'rules[0].headers["X-Key"]');
  assert.equal(formatPath([]), "");
});
