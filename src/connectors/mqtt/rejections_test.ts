import assert from "node:assert/strict";
import { matchesDropTopic } from "./rejections.ts";

Deno.test("filters that would see diverted rejected messages are recognised", () => {
  for (
    const f of [
      "$SYS/#",
      "$SYS/+/rejected",
      "$SYS/twinmill/#",
      "$SYS/twinmill/+",
      "$SYS/+/+",
      "$SYS/twinmill/rejected",
    ]
  ) {
    assert.equal(matchesDropTopic(f), true, f);
  }
  for (
    const f of [
      "#",
      "twins/#",
      "$SYS/+/heartbeat",
      "$SYS/twinmill",
      "$SYS/twinmill/rejected/x",
      "+/+/+",
    ]
  ) {
    assert.equal(matchesDropTopic(f), false, f);
  }
});
