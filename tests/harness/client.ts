/**
 * Client helpers for integration tests: an MQTT device, metric reads, JSON requests.
 * @module
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";

/** Anything with an HTTP base URL (a `NodeProcess`). */
export interface HasHttp {
  httpUrl: string;
}

/** Anything with an MQTT URL (a `NodeProcess`). */
export interface HasMqtt {
  mqttUrl: string | undefined;
}

/** An MQTT device connection to a node; disposing ends it. */
export interface Device extends AsyncDisposable {
  /** Publishes `body` as JSON with QoS 1; resolves on the PUBACK. */
  publish(topic: string, body: unknown): Promise<void>;
}

export async function connectDevice(node: HasMqtt, clientId: string): Promise<Device> {
  assert.ok(node.mqttUrl, "the node has an MQTT listener");
  const client = await mqtt.connectAsync(node.mqttUrl, { clientId, reconnectPeriod: 0 });
  return {
    async publish(topic, body) {
      await client.publishAsync(topic, JSON.stringify(body), { qos: 1 });
    },
    async [Symbol.asyncDispose]() {
      await client.endAsync(true);
    },
  };
}

/** Sum of every sample of metric `name` in the node's `/metrics`; throws if it is absent. */
export async function metric(node: HasHttp, name: string): Promise<number> {
  const res = await fetch(`${node.httpUrl}/metrics`);
  const text = await res.text();
  assert.equal(res.status, 200, `GET /metrics: ${text}`);
  let sum = 0;
  let found = false;
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m && m[1] === name) {
      sum += Number(m[3]);
      found = true;
    }
  }
  if (!found) throw new Error(`metric ${name} is not in /metrics`);
  return sum;
}

/** A labelled metric's values by one label's value, e.g. `{ running: 1, paused: 0 }`. */
export async function metricBy(
  node: HasHttp,
  name: string,
  label: string,
): Promise<Record<string, number>> {
  const text = await (await fetch(`${node.httpUrl}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)\{([^}]*)\}\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const v = new RegExp(`(?:^|,)${label}="([^"]*)"`).exec(m[2]);
    if (v) out[v[1]] = (out[v[1]] ?? 0) + Number(m[3]);
  }
  return out;
}

/** Fetch and parse a JSON answer (any status); throws naming the request if it is not JSON. */
export async function getJson(
  url: string,
  init?: RequestInit,
  // deno-lint-ignore no-explicit-any
): Promise<{ status: number; body: any }> {
  const res = await fetch(url, init);
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    throw new Error(`${init?.method ?? "GET"} ${url} -> ${res.status}, not JSON: ${text}`);
  }
}

/** GET a twin: its JSON, or null when it does not exist (404); any other status fails. */
export async function twinOrNull<T>(base: string, id: string): Promise<T | null> {
  const r = await fetch(`${base}/v1/twins/${id}`);
  if (r.status === 404) {
    await r.body?.cancel();
    return null;
  }
  if (r.status !== 200) throw new Error(`GET /v1/twins/${id} -> ${r.status}: ${await r.text()}`);
  return await r.json();
}

/**
 * A JSON request: `method`, content type `application/json`, `body` serialised (none when
 * undefined).
 *
 * @example
 * ```ts
 * await getJson(`${node.httpUrl}/v1/twins/press-7`, json("PUT", { attributes: {} }));
 * ```
 */
export const json = (method: string, body?: unknown): RequestInit => ({
  method,
  headers: { "content-type": "application/json" },
  body: body === undefined ? undefined : JSON.stringify(body),
});
