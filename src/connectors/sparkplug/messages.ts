/**
 * A Sparkplug change to a twin as the device messages twinmill already knows: status
 * (`twins/{id}/status`), reported (`twins/{id}/reported`, the birth's metadata under
 * `$sparkplug`) or telemetry (`twins/{id}/telemetry`, one field per metric). The durable log
 * keeps these canonical messages — replay after a crash and the cluster's shard consumers
 * read them with the same validation as any device's — so they are validated here exactly
 * as they will be read back. A change whose JSON passes the payload limit (64 KiB) becomes
 * several messages: telemetry fields split in order (each part with the same `ts`), birth
 * metadata reduced to the datatypes and split the same way (JSON merge patches add up).
 * @module
 */
import type { JsonLimits } from "../../../actors/json_intake.ts";
import {
  type DeviceBody,
  type DeviceTopic,
  MAX_PAYLOAD_BYTES,
  parseDeviceBody,
  parseDeviceTopic,
  type RejectReason,
} from "../../../actors/validate.ts";
import type { Change } from "./edge_nodes.ts";

/** A change as a device message, ready for the ingest. */
export interface Canonical {
  topic: DeviceTopic;
  body: DeviceBody;
  rawTopic: string;
  payload: Uint8Array;
}

/** The key of `reported` that holds what the births declared. */
export const META_KEY = "$sparkplug";

/** Room in one payload for the entries of a part (the rest: braces, `ts`, `bdSeq`). */
const ROOM = MAX_PAYLOAD_BYTES - 256;

const encoder = new TextEncoder();

function validated(
  rawTopic: string,
  payload: Uint8Array,
  limits?: JsonLimits,
): Canonical | RejectReason {
  const topic = parseDeviceTopic(rawTopic);
  if (typeof topic === "string") return topic;
  const body = parseDeviceBody(topic, payload, limits);
  if (typeof body === "string") return body;
  return { topic, body, rawTopic, payload };
}

const json = (v: unknown) => encoder.encode(JSON.stringify(v));

/** The entries of `o` in parts whose JSON keeps within {@linkcode ROOM} (one part at least). */
function split<T>(o: Record<string, T>): Record<string, T>[] {
  const parts: Record<string, T>[] = [{}];
  let size = 0;
  for (const [k, v] of Object.entries(o)) {
    const n = json(k).byteLength + json(v).byteLength + 2;
    if (size + n > ROOM && size > 0) {
      parts.push({});
      size = 0;
    }
    parts[parts.length - 1][k] = v;
    size += n;
  }
  return parts;
}

/** The change as one or more validated device messages (or why a part cannot be one). */
export function canonicalAll(c: Change, limits?: JsonLimits): Array<Canonical | RejectReason> {
  const rawTopic = `twins/${c.twin}/${c.kind}`;
  if (c.kind === "status") {
    return [validated(rawTopic, encoder.encode(c.online ? "online" : "offline"), limits)];
  }
  if (c.kind === "telemetry") {
    return split(c.fields).map((fields) =>
      validated(rawTopic, json(c.ts === undefined ? fields : { ...fields, ts: c.ts }), limits)
    );
  }
  const { table, before, bdSeq } = c.meta;
  const meta = (metrics: Record<string, unknown>, first: boolean) =>
    json({ [META_KEY]: { ...(first && bdSeq !== undefined ? { bdSeq } : {}), metrics } });
  const detailed = meta(table.describe(before, true), true);
  if (detailed.byteLength <= MAX_PAYLOAD_BYTES) return [validated(rawTopic, detailed, limits)];
  return split(table.describe(before, false)).map((part, i) =>
    validated(rawTopic, meta(part, i === 0), limits)
  );
}
