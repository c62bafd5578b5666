import assert from "node:assert/strict";
import { loadConfig } from "../config/config.ts";
import { silentLogger } from "../obs/log.ts";
import { createMetrics } from "../obs/metrics.ts";
import { WebhookSender } from "../rules/webhook.ts";
import { subjects } from "../transport/subjects.ts";
import { startSingle } from "./single.ts";

Deno.test("single mode: owns every twin; a desired change goes out on the transport", async () => {
  const dataDir = await Deno.makeTempDir();
  const webhooks = new WebhookSender({ logger: silentLogger });
  try {
    const parts = await startSingle({
      cfg: loadConfig({ TWINMILL_DATA_DIR: dataDir, TWINMILL_NODE_ID: "n1" }),
      log: silentLogger,
      metrics: createMetrics(),
      webhooks,
      disconnect: () => {},
      disconnectCert: () => {},
      onWaiting: () => assert.fail("a single node waits for nothing"),
    });
    try {
      assert.equal(parts.placement.owns("any-twin"), true);
      assert.equal(parts.ready(), true);
      assert.deepEqual(Object.keys(parts.routes), []);
      assert.equal(parts.leaving, "shutting down");
      const down: unknown[] = [];
      using _ = parts.transport.subscribe(subjects.downlinkAll, (m) => down.push(m.data));
      await parts.twins.putAttributes("press.7", { type: "press" });
      await parts.twins.patchDesired("press.7", { speed: 3 });
      assert.deepEqual(down, [{ id: "press.7", desired: { speed: 3 } }]);
      assert.deepEqual(await parts.twins.commands("press.7"), []);
    } finally {
      await parts.close();
    }
  } finally {
    await webhooks.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});
