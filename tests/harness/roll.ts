/**
 * The steps of a rolling restart against harness processes, shared by
 * `tests/integration/cluster_rolling_test.ts` and the `rolling` bench: every node in turn, then
 * every NATS server in turn, each waited for; and the check that every twin's version equals its
 * acknowledged messages. Devices and the readiness watch are in `rolling.ts`.
 * @module
 */
import type { NatsCluster } from "./nats.ts";
import type { NodeProcess } from "./node.ts";
import { waitFor } from "./wait_for.ts";
import { type Devices, waitReady } from "./rolling.ts";

/** A stream as a server's `/jsz?accounts=true&streams=true` describes it. */
interface StreamDetail {
  name: string;
  cluster?: { leader?: string; replicas?: Array<{ name: string; current: boolean }> };
}

/**
 * What keeps the JetStream cluster of `nats` from being whole again after a server restarted,
 * or undefined when nothing: every member must name the same meta leader, and every stream's
 * leader must report each of its other replicas current (caught up). Consumers are not waited
 * for: under traffic a restarted member's work-queue consumers were seen "not current" for
 * over a minute while the streams were current (nats-server's full `/healthz` then stays 503).
 */
export async function jetStreamLag(nats: NatsCluster): Promise<string | undefined> {
  const views = await Promise.all(nats.servers.map(async (s) => {
    const jsz = await (await fetch(`${s.monitorUrl}/jsz?accounts=true&streams=true`)).json();
    const streams: StreamDetail[] = (jsz.account_details ?? []).flatMap((
      a: { stream_detail?: StreamDetail[] },
    ) => a.stream_detail ?? []);
    return { name: s.name, leader: jsz.meta_cluster?.leader as string | undefined, streams };
  }));
  const leaders = new Set(views.map((v) => v.leader));
  if (leaders.size !== 1 || leaders.has(undefined)) {
    return `meta leader: ${views.map((v) => `${v.name} -> ${v.leader}`).join(", ")}`;
  }
  for (const v of views) {
    for (const st of v.streams) {
      if (st.cluster?.leader !== v.name) continue;
      const behind = (st.cluster.replicas ?? []).filter((r) => !r.current).map((r) => r.name);
      if (behind.length > 0) return `stream ${st.name}: ${behind.join(", ")} not current`;
    }
  }
  const led = views.flatMap((v) => v.streams.filter((st) => st.cluster?.leader === v.name));
  const all = new Set(views.flatMap((v) => v.streams.map((st) => st.name)));
  if (led.length < all.size) return `${all.size - led.length} streams without a leader`;
  return undefined;
}

/** Resolves once {@linkcode jetStreamLag} finds nothing missing. */
export function waitJetStreamWhole(nats: NatsCluster, timeoutMs = 60_000): Promise<unknown> {
  let last: string | undefined = "not asked yet";
  return waitFor(async () => (last = await jetStreamLag(nats)) === undefined, {
    timeoutMs,
    intervalMs: 200,
    message: "JetStream cluster whole (one meta leader, every stream current)",
  }).catch((err) => {
    throw new Error(`${err.message}; last: ${last}`);
  });
}

/** Options of {@linkcode rollNodes} and {@linkcode rollNats}. */
export interface RollOptions {
  /** The traffic: after each step it must go on (one more message per device acknowledged). */
  devices: Devices;
  /** Called before each step with its name (`node n1`, `NATS n2`). */
  onStep?(step: string): void;
}

async function trafficGoesOn(devices: Devices, what: string): Promise<void> {
  const before = devices.total();
  await waitFor(() => devices.total() >= before + devices.acked.size, {
    timeoutMs: 30_000,
    message: `traffic goes on after ${what}`,
  });
}

/** How a node stopped in {@linkcode rollNodes}: exit code and every log line it wrote. */
export interface Stopped {
  code: number;
  logs: string[];
}

/**
 * Restarts each of `nodes` in turn (replacing it in the array): SIGTERM, wait for its exit,
 * start it again with the same environment (same id and ports), wait until every node's
 * `/readyz` answers 200 and traffic goes on. Resolves with how each node stopped.
 */
export async function rollNodes(nodes: NodeProcess[], o: RollOptions): Promise<Stopped[]> {
  const stopped: Stopped[] = [];
  for (let i = 0; i < nodes.length; i++) {
    const step = `node n${i + 1}`;
    o.onStep?.(step);
    stopped.push({ code: await nodes[i].kill("SIGTERM"), logs: nodes[i].logs });
    nodes[i] = await nodes[i].restart();
    await Promise.all(nodes.map((n) => waitReady(n.httpUrl)));
    await trafficGoesOn(o.devices, step);
  }
  return stopped;
}

/**
 * Restarts the first `count` servers of `nats` in turn: stop, start, wait until the JetStream
 * cluster is whole again ({@linkcode waitJetStreamWhole}), every node's `/readyz` answers 200 and
 * traffic goes on.
 */
export async function rollNats(
  nats: NatsCluster,
  nodes: NodeProcess[],
  o: RollOptions & { count?: number },
): Promise<void> {
  for (const s of nats.servers.slice(0, o.count ?? nats.servers.length)) {
    const step = `NATS ${s.name}`;
    o.onStep?.(step);
    await s.stop();
    await s.start({ until: "serving" });
    await waitJetStreamWhole(nats);
    await Promise.all(nodes.map((n) => waitReady(n.httpUrl)));
    await trafficGoesOn(o.devices, step);
  }
}

/**
 * The twins whose version read through `httpUrl` is not their count in `acked`, each waited for
 * until it reaches its count or `deadline` (ms since the epoch) passes.
 */
export async function versionMismatches(
  httpUrl: string,
  acked: Map<string, number>,
  deadline: number,
): Promise<string[]> {
  const wrong: string[] = [];
  for (const [id, n] of acked) {
    let v: number | null = null;
    await waitFor(async () => (v = await version(httpUrl, id)) !== null && v >= n, {
      timeoutMs: Math.max(1, deadline - Date.now()),
      intervalMs: 200,
    }).catch(() => {});
    if (v !== n) wrong.push(`${id} via ${httpUrl}: version ${v}, acknowledged ${n}`);
  }
  return wrong;
}

/** A twin's version read through `httpUrl`, or null when it does not answer 200. */
export async function version(httpUrl: string, id: string): Promise<number | null> {
  const r = await fetch(`${httpUrl}/v1/twins/${id}`, { signal: AbortSignal.timeout(10_000) });
  if (r.status !== 200) {
    await r.body?.cancel();
    return null;
  }
  return (await r.json()).version;
}

/**
 * Why twins may lag their acknowledged messages (for a failure message): what the `TM_IN`
 * stream and each shard's consumer hold (from the stream leader's `/jsz`), and, for every shard
 * whose consumer holds records, each node's `/v1/cluster` view of it and its last log lines
 * about it.
 */
export async function diagnoseStall(nats: NatsCluster, nodes: NodeProcess[]): Promise<string> {
  const out: string[] = [];
  for (const s of nats.servers) {
    const jsz = await (await fetch(`${s.monitorUrl}/jsz?accounts=true&streams=true&consumers=true`))
      .json().catch(() => ({}));
    for (const a of jsz.account_details ?? []) {
      for (const st of a.stream_detail ?? []) {
        if (st.name !== "TM_IN" || st.cluster?.leader !== s.name) continue;
        out.push(`TM_IN on ${s.name}: ${JSON.stringify(st.state)}`);
        for (const c of st.consumer_detail ?? []) {
          out.push(
            `  ${c.name}: pending ${c.num_pending} ack_pending ${c.num_ack_pending} ` +
              `redelivered ${c.num_redelivered} waiting ${c.num_waiting} ` +
              `leader ${c.cluster?.leader}`,
          );
        }
      }
    }
  }
  const stuck = new Set(
    [...out.join("\n").matchAll(/tm-shard-(\d+): pending (\d+) ack_pending (\d+)/g)]
      .filter((m) => m[2] !== "0" || m[3] !== "0").map((m) => m[1]),
  );
  for (const [i, n] of nodes.entries()) {
    const about = n.logs.filter((l) => [...stuck].some((s) => l.includes(`"shard":${s},`)));
    const view = await (await fetch(`${n.httpUrl}/v1/cluster`)).json().catch(() => ({}));
    const shards = (view.shards ?? []).filter((s: { shard: number }) => stuck.has(`${s.shard}`));
    out.push(`n${i + 1} on shards ${[...stuck]}: ${JSON.stringify(shards)}`, ...about.slice(-30));
  }
  return out.join("\n");
}
