import assert from "node:assert/strict";
import {
  commandTopicOf,
  parseSparkplugTopic,
  sparkplugMayPublish,
  sparkplugMaySubscribe,
} from "./topic.ts";

Deno.test("sparkplug topics: edge node and device twin ids, commands, STATE", () => {
  assert.deepEqual(parseSparkplugTopic("spBv1.0/plant/NBIRTH/gw1"), {
    kind: "edge",
    type: "NBIRTH",
    group: "plant",
    edge: "gw1",
    edgeTwin: "plant:gw1",
    twin: "plant:gw1",
  });
  const d = parseSparkplugTopic("spBv1.0/plant/DDATA/gw1/press-7");
  assert.ok(typeof d !== "string" && d.kind === "edge");
  assert.equal(d.twin, "plant:gw1:press-7");
  assert.deepEqual(parseSparkplugTopic("spBv1.0/plant/DCMD/gw1/press-7"), {
    kind: "cmd",
    type: "DCMD",
  });
  assert.deepEqual(parseSparkplugTopic("spBv1.0/STATE/scada"), { kind: "state", host: "scada" });
  for (
    const bad of [
      "spBv1.0/plant/NDATA",
      "spBv1.0/plant/NDATA/gw1/extra",
      "spBv1.0/plant/DDATA/gw1",
      "spBv1.0/plant/XDATA/gw1",
      "spBv1.0/STATE",
      "spAv1.0/plant/NDATA/gw1",
    ]
  ) assert.equal(parseSparkplugTopic(bad), "bad_topic", bad);
  for (
    const bad of [
      "spBv1.0/my plant/NDATA/gw1",
      "spBv1.0/plant/NDATA/a:b",
      `spBv1.0/plant/DDATA/gw1/${"x".repeat(125)}`,
    ]
  ) assert.equal(parseSparkplugTopic(bad), "bad_id", bad);
  assert.equal(commandTopicOf("plant:gw1"), "spBv1.0/plant/NCMD/gw1");
  assert.equal(commandTopicOf("plant:gw1:press"), "spBv1.0/plant/DCMD/gw1/press");
  assert.equal(commandTopicOf("press"), null);
});

Deno.test("sparkplug ACL: an edge node publishes its own births, data and deaths, hears its commands", () => {
  assert.ok(sparkplugMayPublish("plant:gw1", "spBv1.0/plant/NBIRTH/gw1"));
  assert.ok(sparkplugMayPublish("plant:gw1", "spBv1.0/plant/DDATA/gw1/press"));
  assert.ok(!sparkplugMayPublish("plant:gw1", "spBv1.0/plant/NDATA/gw2"));
  assert.ok(!sparkplugMayPublish("plant:gw1", "spBv1.0/other/NDATA/gw1"));
  assert.ok(!sparkplugMayPublish("plant:gw1", "spBv1.0/plant/NCMD/gw1"), "no commands");
  assert.ok(!sparkplugMayPublish("plant:gw1", "spBv1.0/STATE/twinmill"), "no host STATE");
  assert.ok(!sparkplugMayPublish(undefined, "spBv1.0/plant/NDATA/gw1"));
  for (
    const f of [
      "spBv1.0/plant/NCMD/gw1",
      "spBv1.0/plant/NCMD/gw1/#",
      "spBv1.0/plant/DCMD/gw1/+",
      "spBv1.0/plant/DCMD/gw1/#",
      "spBv1.0/plant/DCMD/gw1/press",
      "spBv1.0/STATE/+",
      "spBv1.0/STATE/twinmill",
    ]
  ) assert.ok(sparkplugMaySubscribe("plant:gw1", f), f);
  for (
    const f of [
      "spBv1.0/#",
      "spBv1.0/plant/#",
      "spBv1.0/plant/NCMD/+",
      "spBv1.0/+/NCMD/gw1",
      "spBv1.0/plant/NDATA/gw1",
      "spBv1.0/plant/DCMD/gw2/+",
      "spBv1.0/STATE/#",
    ]
  ) assert.ok(!sparkplugMaySubscribe("plant:gw1", f), f);
});
