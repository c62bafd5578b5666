/**
 * Adversarial: memory before authentication. Three connections sending a CONNECT fixed header
 * that announces 250 MB and then streaming zeros used to grow the node by 200-580 MB, without
 * credentials. Packet sizes are now enforced while reading: a CONNECT announced over 32 KiB,
 * or any later packet over 256 KiB, closes the connection at its fixed header.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { metricBy, rss, startNode, waitFor } from "../harness/mod.ts";

const MB = 1024 * 1024;

/** CONNECT fixed header announcing `n` bytes (remaining-length varint). */
function connectHeader(n: number): Uint8Array {
  const out = [0x10];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Uint8Array.from(out);
}

/** Send the header, then zeros until the node closes the connection; bytes sent and ms. */
async function flood(port: number, peak: () => Promise<void>) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const started = Date.now();
  const zeros = new Uint8Array(64 * 1024);
  let sent = 0;
  try {
    await conn.write(connectHeader(250_000_000));
    while (Date.now() - started < 15_000 && sent < 250_000_000) {
      sent += await conn.write(zeros);
      if (sent % (4 * MB) < zeros.length) await peak();
    }
    return { closed: false, sent, ms: Date.now() - started };
  } catch {
    return { closed: true, sent, ms: Date.now() - started };
  } finally {
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

Deno.test("pre-auth memory: a CONNECT announcing 250 MB is cut at its header; RSS stays flat", async () => {
  await using node = await startNode({ TWINMILL_MQTT_AUTH: "on" });
  const port = Number(new URL(node.mqttUrl!).port);
  const idle = await rss(node.pid);
  let peak = idle;
  const sample = async () => {
    peak = Math.max(peak, await rss(node.pid));
  };
  const results = await Promise.all([1, 2, 3].map(() => flood(port, sample)));
  await sample();
  for (const r of results) {
    assert.ok(r.closed, `closed by the node (sent ${(r.sent / MB).toFixed(1)} MB)`);
    assert.ok(r.ms < 5_000, `closed after ${r.ms} ms`);
    assert.ok(r.sent < 32 * MB, `only ${(r.sent / MB).toFixed(1)} MB got in`);
  }
  assert.ok(peak - idle < 64 * MB, `RSS grew ${((peak - idle) / MB).toFixed(1)} MB`);
  const reasons = await metricBy(node, "twinmill_mqtt_auth_failures_total", "reason");
  assert.equal(reasons.connect_too_large, 3, JSON.stringify(reasons));

  // after CONNECT: a packet over 256 KiB closes the connection; one of 64 KiB passes
  await using open = await startNode({});
  const c = await mqtt.connectAsync(open.mqttUrl!, { clientId: "big", reconnectPeriod: 0 });
  try {
    await c.publishAsync("twins/big/reported", `{"a":"${"x".repeat(60_000)}"}`, { qos: 1 });
    const closed = new Promise<void>((r) => c.once("close", () => r()));
    c.publish("twins/big/reported", `{"a":"${"x".repeat(300 * 1024)}"}`, { qos: 1 }, () => {});
    await closed;
    await waitFor(async () =>
      ((await metricBy(open, "twinmill_mqtt_messages_rejected_total", "reason")).too_large ??
        0) === 1
    );
  } finally {
    await c.endAsync(true);
  }
});
