import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { Client, PublishPacket } from "aedes";
import { createLogger } from "../../obs/log.ts";
import { createMetrics } from "../../obs/metrics.ts";
import { Acl } from "./acl.ts";
import { Notices } from "./notices.ts";
import { publishAuthorizer } from "./publish.ts";
import { Rejections } from "./rejections.ts";
import { Sessions } from "./sessions.ts";

Deno.test("publish: messages that cannot be made durable are not acknowledged, counted each, logged once a minute", async () => {
  const lines: string[] = [];
  const metrics = createMetrics();
  const notices = new Notices(createLogger("info", "mqtt", (l) => lines.push(l)), metrics);
  const sessions = new Sessions();
  const authorize = publishAuthorizer({
    ingest: { submit: () => Promise.reject(new Error("the node is stopping")) },
    sessions,
    acl: new Acl(false, sessions),
    rejections: new Rejections(notices),
    notices,
  });
  const errors = await Promise.all(
    Array.from(
      { length: 50 },
      (_, i) =>
        new Promise<Error | null | undefined>((resolve) =>
          authorize(null as unknown as Client, {
            cmd: "publish",
            topic: `twins/dev-${i}/telemetry`,
            payload: Buffer.from('{"temp":1}'),
            qos: 1,
            messageId: i + 1,
            retain: false,
            dup: false,
          } as PublishPacket, (err) => resolve(err))
        ),
    ),
  );
  assert.ok(errors.every((e) => e instanceof Error), "none acknowledged");
  const logged = lines.filter((l) => l.includes("cannot make a message durable"));
  assert.equal(logged.length, 1, lines.join("\n"));
  const text = await metrics.registry.metrics();
  assert.match(text, /twinmill_mqtt_messages_rejected_total\{reason="not_durable"\} 50/);
});
