import assert from "node:assert/strict";
import { globMatch, idRefusal, provisionedAttributes } from "./provisioning_checks.ts";

const T0 = Date.UTC(2024, 4, 1, 12);

Deno.test("globMatch: exact ids and anchored globs", () => {
  assert.ok(globMatch("press-7", "press-7"));
  assert.ok(!globMatch("press-7", "press-70"));
  assert.ok(globMatch("press-*", "press-7"));
  assert.ok(globMatch("press-*", "press-"));
  assert.ok(!globMatch("press-*", "xpress-7"));
  assert.ok(globMatch("*-7", "press-7"));
  assert.ok(!globMatch("*-7", "press-71"));
  assert.ok(globMatch("a*b*c", "a-b-c"));
  assert.ok(globMatch("a*b*c", "abc"));
  assert.ok(!globMatch("a*b*c", "acb"));
  assert.ok(!globMatch("ab*ba", "aba"), "the parts may not overlap");
  assert.ok(globMatch("*", "anything"));
});

Deno.test("idRefusal: deny wins, a non-empty allow-list must match", () => {
  assert.equal(idRefusal({ allow: [], deny: [] }, "x"), null);
  assert.equal(idRefusal({ allow: ["press-*"], deny: [] }, "press-1"), null);
  assert.match(idRefusal({ allow: ["press-*"], deny: [] }, "robot-1")!, /not on the key's allow/);
  assert.match(idRefusal({ allow: ["press-*"], deny: ["press-13"] }, "press-13")!, /deny-list/);
});

Deno.test("provisionedAttributes: the template wins; a device cannot pick its site", () => {
  const r = provisionedAttributes(
    { site: "evil", type: "robot", fw: "1.2", line: "3", color: "red" },
    { site: "plant-a", profile: "press", attributes: { line: "7" } },
    "pk_000000000001",
    T0,
  );
  assert.deepEqual(r.attributes, {
    fw: "1.2",
    color: "red",
    line: "7",
    site: "plant-a",
    profile: "press",
    provisionedBy: "pk_000000000001",
    provisionedAt: new Date(T0).toISOString(),
  });
  assert.deepEqual(r.ignored.sort(), ["line", "site", "type"]);
});
