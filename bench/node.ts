/**
 * A twinmill node for the benchmarks (the test harness's `startNode`, registered for cleanup)
 * and small readers of its HTTP API and Prometheus metrics.
 * @module
 */
import { type NodeProcess, startNode } from "../tests/harness/mod.ts";
import { log, sleep, trackDisposable } from "./proc.ts";

/** A node that {@linkcode cleanup} stops; `dispose()` stops it earlier. */
export type BenchNode = NodeProcess & { dispose(): Promise<void> };

/** Starts a node subprocess on free ports with a fresh data dir, plus `env`. */
export async function startBenchNode(env: Record<string, string> = {}): Promise<BenchNode> {
  const node = await startNode(env);
  return trackDisposable(`twinmill node (pid ${node.pid})`, node);
}

/**
 * Starts one cluster node per id (`TWINMILL_NODE_ID`) on `natsUrl` with `shards` shards, all at
 * once (a node started alone first would take every shard and hand most off again), each tried
 * up to 3 times: now and then a node dies by SIGTERM (143) during start on a busy machine.
 */
export function startClusterNodes(
  natsUrl: string,
  ids: string[],
  shards: number,
  env: Record<string, string> = {},
): Promise<BenchNode[]> {
  return Promise.all(ids.map(async (id) => {
    for (let attempt = 1;; attempt++) {
      try {
        return await startBenchNode({
          NATS_URL: natsUrl,
          TWINMILL_NODE_ID: id,
          TWINMILL_SHARDS: String(shards),
          ...env,
        });
      } catch (err) {
        if (attempt >= 3) throw err;
        log(`${id} did not start (${String(err).split("\n")[0]}); retrying`);
      }
    }
  }));
}

/** The node's MQTT port; throws if its MQTT listener is off. */
export function mqttPort(node: NodeProcess): number {
  if (node.mqttPort === undefined) throw new Error("The node has no MQTT listener");
  return node.mqttPort;
}

/**
 * `version` of twin `id`, or 0 while it does not exist. With `unavailable`, a 503 (cluster:
 * a shard without a reachable owner) also reads as 0 and is reported to it.
 */
export async function twinVersion(
  httpUrl: string,
  id: string,
  unavailable?: (body: string) => void,
): Promise<number> {
  const res = await fetch(`${httpUrl}/v1/twins/${encodeURIComponent(id)}`);
  if (res.status === 404) {
    await res.body?.cancel();
    return 0;
  }
  if (res.status === 503 && unavailable) {
    unavailable(await res.text());
    return 0;
  }
  if (!res.ok) throw new Error(`GET /v1/twins/${id} -> ${res.status}: ${await res.text()}`);
  const twin = await res.json() as { version: number };
  return twin.version;
}

/**
 * Polls twins `ids` until each has exactly `version`; throws if one goes past it (a message
 * applied twice) or on the deadline. With `retryUnavailable` (cluster), 503 answers are
 * retried; returns how many there were.
 */
export async function waitForVersions(
  httpUrl: string,
  ids: string[],
  version: number,
  timeoutMs = 60_000,
  opts: { retryUnavailable?: boolean; intervalMs?: number } = {},
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let unavailable = 0;
  let lastError = "";
  const on503 = opts.retryUnavailable
    ? (body: string) => {
      unavailable++;
      lastError = body;
    }
    : undefined;
  let left = ids;
  while (left.length > 0) {
    const versions = await Promise.all(left.map((id) => twinVersion(httpUrl, id, on503)));
    const over = left.findIndex((_, i) => versions[i] > version);
    if (over >= 0) {
      throw new Error(`Twin "${left[over]}" has version ${versions[over]}, expected ${version}`);
    }
    left = left.filter((_, i) => versions[i] < version);
    if (left.length === 0) break;
    if (Date.now() > deadline) {
      throw new Error(
        `${left.length} of ${ids.length} twins below version ${version} after ${timeoutMs} ms` +
          (lastError ? `; last 503: ${lastError}` : ""),
      );
    }
    await sleep(opts.intervalMs ?? 5);
  }
  return unavailable;
}

/** Value of an unlabelled metric in `GET /metrics`, e.g. `twinmill_twins_active`. */
export async function metric(httpUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  const m = text.match(new RegExp(`^${name} (\\S+)$`, "m"));
  if (!m) throw new Error(`Metric ${name} not found in GET /metrics`);
  return Number(m[1]);
}

/** Sum of every sample of `name`, labelled or not; 0 while it has none. */
export async function metricSum(httpUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "gm"))) {
    sum += Number(m[1]);
  }
  return sum;
}
