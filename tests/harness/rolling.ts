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
   * GETs of a twin that failed between two 200s of `/readyz` otherwise than with 503
   * `shard_unavailable` (no answer, a 500, a 503 `not_ready` or `starting`, …): the node said it
   * could serve and could not.
   */
  dishonest: string[];
  /**
   * GETs answered 503 `shard_unavailable` ("retry shortly") between two 200s of `/readyz`: the
   * twin's shard had no serving owner then (between two owners; every node answers so).
   */
  handoffGaps: number;
  /**
   * Of those, the ones whose shard the node's own `/v1/cluster`, read just before the GET,
   * named it the holder of (in state owned). Not counted as dishonest: that view comes from the
   * lease bucket, which still names a node for a moment after it released the lease (or until
   * the lease expires when the release failed) while the node no longer serves the shard.
   */
  gapsOnHeldShards: string[];
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

/**
 * The shards a node's `/v1/cluster` names it the holder of, in state owned (a lease taken while
 * the node is still acquiring shows `acquiring`).
 */
async function heldShards(httpUrl: string): Promise<Set<number>> {
  const c = await (await fetch(`${httpUrl}/v1/cluster`, { signal: AbortSignal.timeout(3000) }))
    .json();
  return new Set(
    (c.shards as Array<{ shard: number; owner: string | null; state: string }>)
      .filter((s) => s.owner === c.node && s.state === "owned").map((s) => s.shard),
  );
}

/**
 * Polls each node in a loop: `/readyz`, its `/v1/cluster`, then `GET /v1/twins/{id}` of one of
 * `twins` (in turn), then `/readyz` again. A GET that fails between two 200s of `/readyz`
 * otherwise than with the 503 `shard_unavailable` of a shard between owners is a dishonest
 * readiness (see {@linkcode ReadinessLog}). Answers are counted by `phase` (set it as the run
 * goes); `stop()` returns what was seen per node.
 */
export function watchReadiness(nodes: WatchedNode[], twins: string[]) {
  const logs = new Map<string, ReadinessLog>(nodes.map((n) => [n.name, {
    readyz: {},
    dishonest: [],
    handoffGaps: 0,
    gapsOnHeldShards: [],
    refusedWhileNotReady: 0,
  }]));
  const state = { phase: "start", running: true };
  const loops = nodes.map(async (n, i) => {
    const log = logs.get(n.name)!;
    for (let k = i; state.running; k++) {
      const phase = state.phase;
      const before = await statusOf(`${n.httpUrl}/readyz`);
      const held = await heldShards(n.httpUrl).catch(() => new Set<number>());
      const id = twins[k % twins.length];
      const get = await statusOf(`${n.httpUrl}/v1/twins/${id}`, 10_000);
      const after = await statusOf(`${n.httpUrl}/readyz`);
      const counts = log.readyz[phase] ??= {};
      for (const s of [before.status, after.status]) counts[s] = (counts[s] ?? 0) + 1;
      if (get.status === 200) {
        // served
      } else if (before.status !== 200 || after.status !== 200) {
        log.refusedWhileNotReady++;
      } else {
        const what = `${phase}: GET ${id}: ${get.status} ${get.body.slice(0, 200)}`;
        const shard = get.status === 503
          ? /"shard_unavailable".*Shard (\d+) /.exec(get.body)?.[1]
          : undefined;
        if (shard === undefined) log.dishonest.push(what);
        else {
          log.handoffGaps++;
          if (held.has(Number(shard))) log.gapsOnHeldShards.push(what);
        }
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
