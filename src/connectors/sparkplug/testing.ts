/**
 * Sparkplug payloads for tests, encoded with Eclipse Tahu's `sparkplug-payload` exactly as
 * an edge node (Tahu's `sparkplug-client`) sends them.
 * @module
 */
import { get as sparkplugPayload } from "sparkplug-payload";
import { decode, type Decoded } from "./codec.ts";
import { parseSparkplugTopic, type SparkplugTopic } from "./topic.ts";

const tahu = sparkplugPayload("spBv1.0")!;

/** A metric as Tahu's client takes it. */
export interface TestMetric {
  name?: string;
  alias?: number;
  type: string;
  value: unknown;
  properties?: Record<string, { type: string; value: unknown }>;
  isHistorical?: boolean;
}

/** Encode a payload (Tahu). */
export function encode(p: { timestamp?: number; seq?: number; metrics: TestMetric[] }): Uint8Array {
  // deno-lint-ignore no-explicit-any
  return tahu.encodePayload(p as any);
}

/** Decode a payload as the edge node would (Tahu). */
export function tahuDecode(b: Uint8Array) {
  return tahu.decodePayload(b);
}

/** Encode then decode with twinmill's decoder (throws on a codec error). */
export function roundTrip(p: { timestamp?: number; seq?: number; metrics: TestMetric[] }): Decoded {
  const d = decode(encode(p), 1 << 20, 100_000);
  if (typeof d === "string") throw new Error(`cannot decode: ${d}`);
  return d;
}

/** An edge topic, parsed (throws when it is not one). */
export function edgeTopic(topic: string): Extract<SparkplugTopic, { kind: "edge" }> {
  const t = parseSparkplugTopic(topic);
  if (typeof t === "string" || t.kind !== "edge") throw new Error(`not an edge topic: ${topic}`);
  return t;
}
