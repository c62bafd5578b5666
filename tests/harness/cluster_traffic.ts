/**
 * Device traffic for cluster tests and the check that ends them: devices publish QoS 1 in turn
 * through the given nodes, as real devices would (a persistent session that reconnects and
 * resends unacknowledged messages, which JetStream's de-duplication stores once), counting what
 * was acknowledged per twin; afterwards every twin's version must equal that count, read through
 * every node.
 *
 * @example
 * ```ts
 * const acked = new Map<string, number>();
 * const t = deviceTraffic([n1, n2], acked, { devices: 12 });
 * await waitFor(() => t.total() >= 200);
 * await t.stop();
 * await assertExact([n1, n2], acked);
 * ```
 * @module
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import type { NodeProcess } from "./node.ts";
import { waitFor } from "./wait_for.ts";

/** Options of {@linkcode deviceTraffic}. */
export interface TrafficOptions {
  /** How many devices (default 30). */
  devices?: number;
  /** Twin ids are `${prefix}-${i}` (default `dev`). */
  prefix?: string;
}

/** Running traffic: acknowledged messages since it started, and its end. */
export interface Traffic {
  total(): number;
  stop(): Promise<void>;
}

/**
 * Devices publishing QoS 1 in turn through `nodes` (device `i` on node `i mod n`), adding each
 * acknowledged message to `acked` (per twin, kept across calls).
 */
export function deviceTraffic(
  nodes: NodeProcess[],
  acked: Map<string, number>,
  o: TrafficOptions = {},
): Traffic {
  let running = true;
  let sent = 0;
  const loops = Array.from({ length: o.devices ?? 30 }, async (_, i) => {
    const id = `${o.prefix ?? "dev"}-${i}`;
    if (!acked.has(id)) acked.set(id, 0);
    const c = await mqtt.connectAsync(nodes[i % nodes.length].mqttUrl!, {
      clientId: id,
      clean: false,
      reconnectPeriod: 200,
    });
    try {
      for (let seq = 1; running; seq++) {
        await c.publishAsync(`twins/${id}/telemetry`, JSON.stringify({ seq }), { qos: 1 });
        acked.set(id, acked.get(id)! + 1);
        sent++;
      }
    } finally {
      await c.endAsync(true);
    }
  });
  return {
    total: () => sent,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** The twin's version as `node` answers it, or null when it answers no twin. */
export async function twinVersion(node: NodeProcess, id: string): Promise<number | null> {
  const r = await fetch(`${node.httpUrl}/v1/twins/${id}`);
  if (r.status !== 200) {
    await r.body?.cancel();
    return null;
  }
  return (await r.json()).version;
}

/**
 * Every twin of `acked` reaches exactly its acknowledged count, read through every node, never
 * more; all within `withinMs` together.
 */
export async function assertExact(
  nodes: NodeProcess[],
  acked: Map<string, number>,
  withinMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + withinMs;
  for (const node of nodes) {
    for (const [id, n] of acked) {
      let last: number | null = null;
      const { v } = await waitFor<{ v: number } | null>(async () => {
        const v = last = await twinVersion(node, id);
        return v !== null && v >= n ? { v } : null; // a version of 0 is an answer too
      }, {
        timeoutMs: Math.max(1, deadline - Date.now()),
        message: `${id} reaches ${n} via ${node.httpUrl}`,
      }).catch((err) => {
        throw new Error(`${err.message}; last version seen ${last}`);
      }) as { v: number };
      assert.equal(v, n, `${id} via ${node.httpUrl}: version ${v}, acknowledged ${n}`);
    }
  }
}
