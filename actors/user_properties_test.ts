import assert from "node:assert/strict";
import {
  MAX_USER_PROPERTIES,
  propertiesObject,
  readUserProperties,
  withinLimits,
  withPropertyTags,
} from "./user_properties.ts";
import { emptyTwin, type TwinEffect, type TwinMessage } from "./twin.ts";
import { applyTwin } from "./twin_apply.ts";
import { parseProfile } from "./rules/profile.ts";

Deno.test("user properties: read as MQTT.js / mqtt-packet give them, repeated names in order", () => {
  assert.equal(readUserProperties(undefined), undefined);
  assert.equal(readUserProperties({}), undefined);
  const raw = Object.create(null);
  raw.line = "L3";
  raw.shift = ["night", "late"];
  assert.deepEqual(readUserProperties(raw), [["line", "L3"], ["shift", "night"], [
    "shift",
    "late",
  ]]);
  assert.deepEqual(propertiesObject(readUserProperties(raw) as never), {
    line: "L3",
    shift: ["night", "late"],
  });
  // at the limits
  const full = Object.fromEntries(
    Array.from(
      { length: MAX_USER_PROPERTIES },
      (_, i) => [`${i}`.padEnd(64, "n"), "v".repeat(256)],
    ),
  );
  assert.equal((readUserProperties(full) as unknown[]).length, 16);
  assert.deepEqual(readUserProperties({ "é": "ü".repeat(128) }), [["é", "ü".repeat(128)]]);
});

Deno.test("user properties: over a limit the message is refused (bad_property), never cut short", () => {
  const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`p${i}`, "x"]));
  assert.equal(readUserProperties(many), "bad_property");
  assert.equal(readUserProperties({ a: Array(17).fill("x") }), "bad_property");
  assert.equal(readUserProperties({ ["n".repeat(65)]: "x" }), "bad_property");
  assert.equal(readUserProperties({ ["é".repeat(33)]: "x" }), "bad_property"); // 66 bytes
  assert.equal(readUserProperties({ "": "x" }), "bad_property");
  assert.equal(readUserProperties({ a: "v".repeat(257) }), "bad_property");
  assert.equal(readUserProperties({ a: "ü".repeat(129) }), "bad_property"); // 258 bytes
  assert.equal(readUserProperties({ a: 1 }), "bad_property");
  assert.equal(readUserProperties("line=L3"), "bad_property");
  const proto = Object.create(null);
  proto["__proto__"] = "x";
  assert.equal(readUserProperties(proto), "bad_property");
  assert.equal(withinLimits([["a", "b"]]), true);
  assert.equal(withinLimits([]), false);
  assert.equal(withinLimits(Array(17).fill(["a", "b"])), false);
});

Deno.test("user properties: listed names become tags; the twin's own tags are kept", () => {
  const tags = { device: "d", line: "A" };
  const props = [
    ["line", "L3"],
    ["shift", "night"],
    ["shift", "late"],
    ["cell", ""],
    ["bay", "a\\"],
    ["bay", "b 2,x=\\y"],
  ] as const;
  assert.equal(withPropertyTags(tags, props, []), tags);
  assert.equal(withPropertyTags(tags, undefined, ["shift"]), tags);
  assert.deepEqual(withPropertyTags(tags, props, ["line", "shift", "cell", "bay", "absent"]), {
    device: "d",
    line: "A",
    shift: "night",
    bay: "b 2,x=\\y", // (escaped by the line protocol encoder)
  });
  assert.deepEqual(withPropertyTags({ device: "d" }, props, ["line"]), { device: "d", line: "L3" });
});

Deno.test("twin: the event of a device message carries its user properties; the point its listed tags", () => {
  const props = [["line", "L3"], ["shift", "night"], ["lot", "7"]] as const;
  type Device = Extract<TwinMessage, { type: "device" }>;
  const msg = (seq: number, body: Device["body"]): Device => ({
    type: "device",
    source: "mqtt",
    seq,
    at: 1000,
    body,
    props,
  });
  const rec = emptyTwin("press-7", 0);
  // no profile: event only, the point has the twin's tags
  const a = applyTwin(rec, msg(1, { kind: "telemetry", fields: { temp: 20 } }), 5);
  const point = a.effects.find((e) => e.type === "point") as Extract<TwinEffect, { type: "point" }>;
  assert.deepEqual(point.tags, { device: "press-7" });
  const ev = a.effects.find((e) => e.type === "event") as Extract<TwinEffect, { type: "event" }>;
  assert.deepEqual(ev.event.properties, { line: "L3", shift: "night", lot: "7" });
  assert.deepEqual(ev.event.data, { temp: 20 });
  // reported and status events too; a message without properties has none
  const b = applyTwin(a.record, msg(2, { kind: "reported", patch: { fw: "1" } }), 5);
  assert.deepEqual((b.effects[0] as { event: { properties: unknown } }).event.properties, {
    line: "L3",
    shift: "night",
    lot: "7",
  });
  const c = applyTwin(
    b.record,
    { ...msg(3, { kind: "status", online: true }), props: undefined },
    5,
  );
  assert.equal("properties" in (c.effects[0] as { event: object }).event, false);
  // a profile listing tags: those properties tag the telemetry point (unique timestamp kept)
  const p = parseProfile({ rules: [], tags: ["line", "shift"] });
  assert.ok(p.ok);
  const d = applyTwin(c.record, msg(4, { kind: "telemetry", fields: { temp: 21 } }), 5, p.profile);
  const pt = d.effects.find((e) => e.type === "point") as Extract<TwinEffect, { type: "point" }>;
  assert.deepEqual(pt.tags, { device: "press-7", line: "L3", shift: "night" });
  assert.equal(pt.subMs, 4);
});

Deno.test("profile: tags are bounded, unique, not reserved", () => {
  const ok = parseProfile({ rules: [], tags: ["line", "shift", "cell-2", "a.b"] });
  assert.ok(ok.ok);
  assert.deepEqual(ok.profile.tags, ["line", "shift", "cell-2", "a.b"]);
  assert.deepEqual(ok.profile.source.tags, ["line", "shift", "cell-2", "a.b"]);
  const none = parseProfile({ rules: [] });
  assert.ok(none.ok);
  assert.deepEqual(none.profile.tags, []);
  assert.equal("tags" in none.profile.source, false);
  for (
    const bad of [
      ["device"],
      ["time"],
      ["_field"],
      ["a b"],
      [""],
      ["x".repeat(65)],
      ["a", "a"],
      Array.from({ length: 9 }, (_, i) => `t${i}`),
      "line",
    ]
  ) {
    const r = parseProfile({ rules: [], tags: bad });
    assert.ok(!r.ok, JSON.stringify(bad));
    assert.match(r.issues[0].path, /^tags/);
  }
});
