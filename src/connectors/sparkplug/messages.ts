/**
 * A Sparkplug change to a twin as the device message twinmill already knows: status
 * (`twins/{id}/status`), reported (`twins/{id}/reported`, the birth's metadata under
 * `$sparkplug`) or telemetry (`twins/{id}/telemetry`, one field per metric). The durable log
 * keeps these canonical messages — replay after a crash and the cluster's shard consumers
 * read them with the same validation as any device's — so they are validated here exactly
 * as they will be read back.
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

const encoder = new TextEncoder();

/** The change as a validated device message, or why it cannot be one. */
export function canonical(c: Change, limits?: JsonLimits): Canonical | RejectReason {
  const rawTopic = `twins/${c.twin}/${c.kind}`;
  let payload: Uint8Array;
  if (c.kind === "status") payload = encoder.encode(c.online ? "online" : "offline");
  else if (c.kind === "telemetry") {
    payload = encoder.encode(
      JSON.stringify(c.ts === undefined ? c.fields : { ...c.fields, ts: c.ts }),
    );
  } else {
    // with its properties; when that is over the payload limit, the datatypes only
    const { table, before, bdSeq } = c.meta;
    const meta = (detail: boolean) =>
      encoder.encode(JSON.stringify({
        [META_KEY]: {
          ...(bdSeq !== undefined ? { bdSeq } : {}),
          metrics: table.describe(before, detail),
        },
      }));
    payload = meta(true);
    if (payload.byteLength > MAX_PAYLOAD_BYTES) payload = meta(false);
  }
  const topic = parseDeviceTopic(rawTopic);
  if (typeof topic === "string") return topic;
  const body = parseDeviceBody(topic, payload, limits);
  if (typeof body === "string") return body;
  return { topic, body, rawTopic, payload };
}
