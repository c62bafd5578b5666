/**
 * Property-based fuzzing (`npm:fast-check`) of the topics issue 17 added and of the ACL on
 * subscription filters: Sparkplug B topics parse to a valid twin id or a named reason, never
 * throw; and no filter a device (`twins/{id}/…`) or an edge node (`spBv1.0/{group}/…/{edge}`)
 * is allowed to subscribe to matches a topic of another twin — wildcards, `$share/…`, empty
 * levels and unicode included. Case counts are fixed so the suite stays fast.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { isValidTwinId, parseDeviceTopic } from "../../actors/validate.ts";
import { deviceMaySubscribe } from "../../src/connectors/mqtt/acl.ts";
import {
  commandTopicOf,
  parseSparkplugTopic,
  sparkplugMaySubscribe,
} from "../../src/connectors/sparkplug/topic.ts";

/** MQTT topic filter matching (`+` one level, `#` the rest; `$` topics not by wildcards). */
function matches(filter: string, topic: string): boolean {
  const f = filter.split("/");
  const t = topic.split("/");
  if (t[0].startsWith("$") && (f[0] === "+" || f[0] === "#")) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** One id part as Sparkplug allows it (no `:`), sometimes one it refuses. */
const part = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9_.-]{1,12}$/),
  fc.constantFrom("a", "b", "g1", "e1", "d1"),
);
const oddPart = fc.oneof(
  part,
  fc.string({ maxLength: 8 }),
  fc.constantFrom("+", "#", "", ":", "a:b", "$share", "é", "x".repeat(130)),
);
const spType = fc.constantFrom(
  "NBIRTH",
  "NDATA",
  "NDEATH",
  "DBIRTH",
  "DDATA",
  "DDEATH",
  "NCMD",
  "DCMD",
  "STATE",
  "ndata",
);
const spTopic = fc.oneof(
  fc.tuple(oddPart, spType, oddPart, fc.option(oddPart, { nil: undefined })).map((
    [g, t, e, d],
  ) => ["spBv1.0", g, t, e, ...(d === undefined ? [] : [d])].join("/")),
  fc.array(oddPart, { maxLength: 6 }).map((s) => ["spBv1.0", ...s].join("/")),
  fc.string({ maxLength: 40 }),
);

Deno.test("fuzz: any Sparkplug topic parses to a valid twin id or a named reason", () => {
  fc.assert(
    fc.property(spTopic, (topic) => {
      const r = parseSparkplugTopic(topic);
      if (typeof r === "string") {
        assert.ok(r === "bad_topic" || r === "bad_id", r);
        return;
      }
      if (r.kind !== "edge") return;
      assert.ok(isValidTwinId(r.twin) && isValidTwinId(r.edgeTwin), r.twin);
      assert.equal(r.twin, r.device === undefined ? r.edgeTwin : `${r.edgeTwin}:${r.device}`);
      assert.equal(r.edgeTwin, `${r.group}:${r.edge}`);
      // the twin's command topic leads back to the same edge node (and device)
      const cmd = commandTopicOf(r.twin)!.split("/");
      assert.deepEqual([cmd[1], cmd[3], cmd[4]], [r.group, r.edge, r.device]);
    }),
    { numRuns: 3000 },
  );
});

Deno.test("fuzz: Sparkplug ids round-trip through topic and twin id", () => {
  fc.assert(
    fc.property(part, part, fc.option(part, { nil: undefined }), (g, e, d) => {
      const type = d === undefined ? "NDATA" : "DDATA";
      const topic = ["spBv1.0", g, type, e, ...(d === undefined ? [] : [d])].join("/");
      const r = parseSparkplugTopic(topic);
      assert.ok(typeof r !== "string" && r.kind === "edge", String(r));
      assert.deepEqual([r.group, r.edge, r.device], [g, e, d]);
      assert.equal(
        commandTopicOf(r.twin),
        topic.replace("/DDATA/", "/DCMD/").replace(
          "/NDATA/",
          "/NCMD/",
        ),
      );
    }),
    { numRuns: 2000 },
  );
});

/** Filter levels an attacker would try: wildcards, `$share`, other ids, empty levels. */
const level = fc.oneof(
  fc.constantFrom(
    "twins",
    "spBv1.0",
    "$share",
    "grp",
    "+",
    "#",
    "",
    "commands",
    "desired",
    "result",
    "NCMD",
    "DCMD",
    "STATE",
    "tA",
    "tB",
    "g1",
    "e1",
    "e2",
    "d1",
    "c1",
  ),
  fc.string({ maxLength: 6 }),
);
/** Mostly the subscriber's own id (most filters tried are then near what it may have). */
const mostly = (own: string, ...others: string[]) =>
  fc.oneof({ arbitrary: fc.constant(own), weight: 3 }, fc.constantFrom(...others));
const id = mostly("tA", "tB", "+", "#", "", "tA:x", "g1", "e1");
const wild = (...v: string[]) => fc.constantFrom(...v, "+", "#", "", "x");
const twinsFilter = fc.tuple(
  id,
  fc.oneof(
    fc.array(wild("desired", "commands", "result", "c1"), { maxLength: 3 }),
    fc.tuple(wild("commands"), wild("c1"), fc.array(wild("result"), { maxLength: 1 })),
  ),
).map(([i, rest]) => ["twins", i, ...rest]);
const sparkplugFilter = fc.tuple(
  mostly("g1", "g2", "+", "#", "", "x"),
  wild("NCMD", "DCMD", "STATE", "NDATA"),
  mostly("e1", "e2", "+", "#", "", "x"),
  fc.array(wild("d1", "d2"), { maxLength: 2 }),
).map(([g, t, e, rest]) => ["spBv1.0", g, t, e, ...rest]);
const filter = fc.oneof(
  fc.array(level, { minLength: 1, maxLength: 7 }),
  twinsFilter,
  sparkplugFilter,
  fc.tuple(level, fc.oneof(twinsFilter, sparkplugFilter)).map(([g, f]) => ["$share", g, ...f]),
).map((s) => s.join("/"));

/** Topics only twin `other` (or edge node `g1:e2`) may hear. */
const othersTopics = [
  "twins/tB/commands/c1",
  "twins/tB/desired",
  "twins/tB/commands/c1/result",
  "twins/tB/reported",
  "spBv1.0/g1/NCMD/e2",
  "spBv1.0/g1/DCMD/e2/d1",
  "spBv1.0/g2/NCMD/e1",
];

Deno.test("fuzz: no filter a device may subscribe to reaches another twin's topics", () => {
  let allowedCount = 0;
  fc.assert(
    fc.property(filter, (f) => {
      for (const me of ["tA", "g1:e1"]) {
        const allowed = deviceMaySubscribe(me, f) || sparkplugMaySubscribe(me, f);
        if (!allowed) continue;
        allowedCount++;
        for (const t of othersTopics) {
          assert.ok(!matches(f, t), `${me} may subscribe to ${f}, which matches ${t}`);
        }
        // what it may hear is about itself: a twins/ topic names its own twin
        const own = parseDeviceTopic(f.replace(/\+/g, "c1"));
        if (typeof own !== "string") assert.equal(own.twin, me, f);
      }
    }),
    { numRuns: 5000 },
  );
  assert.ok(allowedCount >= 25, `only ${allowedCount} allowed filters were tried`);
  // and the filters a device does need are allowed
  assert.ok(deviceMaySubscribe("tA", "twins/tA/commands/+"));
  assert.ok(deviceMaySubscribe("tA", "twins/tA/desired"));
  assert.ok(sparkplugMaySubscribe("g1:e1", "spBv1.0/g1/DCMD/e1/#"));
  assert.ok(sparkplugMaySubscribe("g1:e1", "spBv1.0/STATE/+"));
});
