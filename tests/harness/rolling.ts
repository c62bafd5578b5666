/**
 * Pieces of a rolling restart under traffic, shared by `tests/integration/cluster_rolling_test.ts`
 * and the `rolling` bench: devices that publish QoS 1 at a steady rate and, when their node goes
 * away, reconnect to the next one (as behind a load balancer), and a readiness watch that polls
 * every node's `/readyz` beside a GET of a twin through that node. The steps of the roll are in
 * `roll.ts`.
 * @module
 */
import mqtt from "mqtt";
import { waitFor } from "./wait_for.ts";

/** An MQTT listener devices may use (`{host, port}` of mqtt.js's `servers`). */
export interface MqttAddress {
  host: string;
  port: number;
}

/** Options of {@linkcode startDevices}. */
export interface DevicesOptions {
  /** How many devices (twins `${prefix}-0`…). */
  count: number;
  /** Messages per second per device. */
  rate: number;
  /** Twin id prefix (default `dev`). */
  prefix?: string;
}

/** Devices publishing; see {@linkcode startDevices}. */
export interface Devices {
  /** Acknowledged (PUBACK) messages per twin. */
  acked: Map<string, number>;
  /** Acknowledged messages in all. */
  total(): number;
  /** Connections made beyond the first of each device. */
  reconnects(): number;
  /** Errors devices saw beyond their connection going away (refused PUBACKs, …). */
  errors: string[];
  /** Stop publishing (waits for the messages in flight to be acknowledged) and disconnect. */
  stop(): Promise<void>;
}

/** A connection going away or refused: what a device sees while its node restarts. */
const RECONNECT = /ECONNREFUSED|ECONNRESET|EPIPE|closed|disconnect|ETIMEDOUT|keepalive/i;

/**
 * `count` MQTT 5 devices with persistent sessions, each publishing `{seq}` to
 * `twins/{id}/telemetry` with QoS 1 every `1000 / rate` ms, one message at a time. Device `i`
 * starts on `servers[i % n]`; when its connection goes away it reconnects to the next server in
 * the list (mqtt.js round robin: what a load balancer does) and resends what was not
 * acknowledged, with the same packet id (the cluster's resend key skips a copy it applied).
 */
export async function startDevices(
  servers: MqttAddress[],
  o: DevicesOptions,
): Promise<Devices> {
  const prefix = o.prefix ?? "dev";
  const acked = new Map<string, number>();
  const errors: string[] = [];
  let total = 0;
  let connects = 0;
  let running = true;
  const clients = await Promise.all(Array.from({ length: o.count }, async (_, i) => {
    const id = `${prefix}-${i}`;
    acked.set(id, 0);
    const order = servers.map((_, k) => servers[(i + k) % servers.length]);
    const c = await mqtt.connectAsync({
      servers: order,
      clientId: id,
      clean: false,
      protocolVersion: 5,
      properties: { sessionExpiryInterval: 300 },
      reconnectPeriod: 250,
      connectTimeout: 5000,
    });
    c.on("connect", () => connects++);
    c.on("error", (err) => {
      if (
        !RECONNECT.test(err.message) && !RECONNECT.test(String((err as { code?: unknown }).code))
      ) {
        errors.push(`${id}: ${err.message}`);
      }
    });
    return { id, c };
  }));
  const loops = clients.map(async ({ id, c }) => {
    for (let seq = 1; running; seq++) {
      const next = Date.now() + 1000 / o.rate;
      try {
        await c.publishAsync(`twins/${id}/telemetry`, JSON.stringify({ seq }), { qos: 1 });
        acked.set(id, acked.get(id)! + 1);
        total++;
      } catch (err) {
        errors.push(`${id} seq ${seq}: ${err instanceof Error ? err.message : err}`);
      }
      const wait = next - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  });
  return {
    acked,
    errors,
    total: () => total,
    reconnects: () => connects,
    async stop() {
      running = false;
      await Promise.all(loops);
      await Promise.all(clients.map(({ c }) => c.endAsync(true)));
    },
  };
}

/** A node the readiness watch polls. */
export interface WatchedNode {
  name: string;
  httpUrl: string;
}

/** What {@linkcode watchReadiness} saw of one node. */
export interface ReadinessLog {
  /** `/readyz` answers by phase, then by status (`down`: no answer). */
  readyz: Record<string, Record<string, number>>;
  /**
   * GETs of a twin that failed between two 200s of `/readyz` for another reason than the
   * twin's shard being between two owners, or for that reason while the node held the shard's
   * lease (its `/v1/cluster` read just before the GET).
   */
  dishonest: string[];
  /**
   * GETs answered 503 `shard_unavailable` between two 200s of `/readyz`: the twin's shard was
   * moving between two other nodes (no node can answer it then; each says "retry shortly").
   */
  handoffGaps: number;
  /** GETs that failed while `/readyz` said the node was not ready (honest). */
  refusedWhileNotReady: number;
}

async function statusOf(
  url: string,
  timeoutMs = 3000,
): Promise<{ status: number | "down"; body: string }> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return { status: r.status, body: await r.text() };
  } catch (err) {
    return { status: "down", body: err instanceof Error ? err.message : String(err) };
  }
}

/** The shards `/v1/cluster` of a node says the node itself holds. */
async function ownShards(httpUrl: string): Promise<Set<number>> {
  const c = await (await fetch(`${httpUrl}/v1/cluster`, { signal: AbortSignal.timeout(3000) }))
    .json();
  return new Set(
    (c.shards as Array<{ shard: number; owner: string | null }>)
      .filter((s) => s.owner === c.node).map((s) => s.shard),
  );
}

/**
 * Polls each node in a loop: `/readyz`, its `/v1/cluster`, then `GET /v1/twins/{id}` of one of
 * `twins` (in turn), then `/readyz` again. A GET that fails between two 200s of `/readyz` is a dishonest readiness
 * (the node said it could serve and could not), unless it is the 503 `shard_unavailable` of a
 * shard moving between two other nodes (see {@linkcode ReadinessLog}). Answers are counted by
 * `phase` (set it as the run goes); `stop()` returns what was seen per node.
 */
export function watchReadiness(nodes: WatchedNode[], twins: string[]) {
  const logs = new Map<string, ReadinessLog>(
    nodes.map((
      n,
    ) => [n.name, { readyz: {}, dishonest: [], handoffGaps: 0, refusedWhileNotReady: 0 }]),
  );
  const state = { phase: "start", running: true };
  const loops = nodes.map(async (n, i) => {
    const log = logs.get(n.name)!;
    for (let k = i; state.running; k++) {
      const phase = state.phase;
      const before = await statusOf(`${n.httpUrl}/readyz`);
      const held = await ownShards(n.httpUrl).catch(() => new Set<number>());
      const id = twins[k % twins.length];
      const get = await statusOf(`${n.httpUrl}/v1/twins/${id}`, 10_000);
      const after = await statusOf(`${n.httpUrl}/readyz`);
      const counts = log.readyz[phase] ??= {};
      for (const s of [before.status, after.status]) counts[s] = (counts[s] ?? 0) + 1;
      if (get.status === 200) {
        // next
      } else if (before.status !== 200 || after.status !== 200) {
        log.refusedWhileNotReady++;
      } else {
        const shard = /"shard_unavailable".*Shard (\d+) /.exec(get.body)?.[1];
        if (shard !== undefined && !held.has(Number(shard))) log.handoffGaps++;
        else log.dishonest.push(`${phase}: GET ${id}: ${get.status} ${get.body.slice(0, 200)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  return {
    logs,
    /** Name what the run does now: answers are counted under it. */
    set phase(p: string) {
      state.phase = p;
    },
    async stop(): Promise<Map<string, ReadinessLog>> {
      state.running = false;
      await Promise.all(loops);
      return logs;
    },
  };
}

/** Resolves once `url`'s `/readyz` answers 200. */
export function waitReady(httpUrl: string, timeoutMs = 60_000): Promise<unknown> {
  return waitFor(async () => (await statusOf(`${httpUrl}/readyz`)).status === 200, {
    timeoutMs,
    intervalMs: 100,
    message: `${httpUrl}/readyz answers 200`,
  });
}
