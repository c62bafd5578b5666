/**
 * Pure validation of device input per the contract: twin ids, topics and payloads. Payloads
 * are read by the one JSON intake (`json_intake.ts`): its limits apply to MQTT as to HTTP.
 * @module
 */
import { DEFAULT_JSON_LIMITS, type JsonLimits, readJson } from "./json_intake.ts";

/** Largest accepted MQTT payload (64 KiB). */
export const MAX_PAYLOAD_BYTES = 64 * 1024;

const ID_RE = /^[A-Za-z0-9_.:-]{1,128}$/;

/** True when `id` is a valid twin id: 1–128 of `A-Z a-z 0-9 _ - . :`. */
export function isValidTwinId(id: string): boolean {
  return ID_RE.test(id);
}

/** A device message kind, from the topic's last part. */
export type DeviceKind = "telemetry" | "reported" | "status" | "command_result";

/** A parsed device topic. */
export interface DeviceTopic {
  twin: string;
  kind: DeviceKind;
  /** Command id, for `command_result`. */
  cmdId?: string;
}

/** Why a device message was refused (a metric label; bounded set). */
export type RejectReason =
  | "bad_topic"
  | "bad_id"
  | "too_large"
  | "not_json"
  | "not_object"
  | "bad_field"
  | "bad_status"
  | "acl_denied"
  // the JSON intake's limits (see `json_intake.ts`)
  | "payload_too_deep"
  | "too_many_keys"
  | "string_too_long"
  | "array_too_long"
  | "bad_number"
  | "bad_key"
  /** MQTT 5 user properties over their limits (see `user_properties.ts`). */
  | "bad_property"
  // refused by the twin after the broker accepted it
  /** The change would make the twin larger than its size limit. */
  | "twin_too_large"
  /** The twin is quarantined (its snapshot could not be stored). */
  | "twin_quarantined";

/** Parse a device → twin topic, or return the reject reason. */
export function parseDeviceTopic(topic: string): DeviceTopic | RejectReason {
  const p = topic.split("/");
  if (p[0] !== "twins" || p.length < 3) return "bad_topic";
  const twin = p[1];
  if (p.length === 3 && (p[2] === "telemetry" || p[2] === "reported" || p[2] === "status")) {
    return isValidTwinId(twin) ? { twin, kind: p[2] } : "bad_id";
  }
  if (p.length === 5 && p[2] === "commands" && p[4] === "result") {
    if (!isValidTwinId(twin)) return "bad_id";
    if (!isValidTwinId(p[3])) return "bad_topic";
    return { twin, kind: "command_result", cmdId: p[3] };
  }
  return "bad_topic";
}

/** A validated device message body. */
export type DeviceBody =
  | { kind: "telemetry"; fields: Record<string, number | boolean | string>; ts?: number }
  | { kind: "reported"; patch: Record<string, unknown> }
  | { kind: "status"; online: boolean }
  | { kind: "command_result"; cmdId: string; result: Record<string, unknown> };

const decoder = new TextDecoder("utf-8", { fatal: true });

function parseObject(
  payload: Uint8Array,
  limits: JsonLimits,
): Record<string, unknown> | RejectReason {
  let text: string;
  try {
    text = decoder.decode(payload);
  } catch {
    return "not_json";
  }
  const r = readJson(text, limits);
  if (!r.ok) return r.violation.code;
  const v = r.value;
  if (v === null || typeof v !== "object" || Array.isArray(v)) return "not_object";
  return v as Record<string, unknown>;
}

/**
 * Validate a payload for its topic. Telemetry: a JSON object of number/boolean/string fields,
 * optional numeric `ts` (ms since epoch). Reported: any JSON object (a merge patch). Status:
 * `online` or `offline` (plain or JSON string). JSON payloads must keep within `limits`.
 */
export function parseDeviceBody(
  t: DeviceTopic,
  payload: Uint8Array,
  limits: JsonLimits = DEFAULT_JSON_LIMITS,
): DeviceBody | RejectReason {
  if (payload.byteLength > MAX_PAYLOAD_BYTES) return "too_large";
  if (t.kind === "status") {
    let s: string;
    try {
      s = decoder.decode(payload).trim();
    } catch {
      return "bad_status";
    }
    if (s.startsWith('"')) {
      try {
        s = JSON.parse(s);
      } catch {
        return "bad_status";
      }
    }
    if (s === "online" || s === "offline") return { kind: "status", online: s === "online" };
    return "bad_status";
  }
  const obj = parseObject(payload, limits);
  if (typeof obj === "string") return obj;
  if (t.kind === "reported") return { kind: "reported", patch: obj };
  if (t.kind === "command_result") {
    return { kind: "command_result", cmdId: t.cmdId!, result: obj };
  }
  const fields: Record<string, number | boolean | string> = {};
  let ts: number | undefined;
  for (const [k, v] of Object.entries(obj)) {
    if (k === "ts") {
      if (typeof v !== "number" || !Number.isFinite(v) || v < 0) return "bad_field";
      ts = Math.trunc(v);
      continue;
    }
    if (k.length === 0 || k.length > 128) return "bad_field";
    if (typeof v === "number") {
      if (!Number.isFinite(v)) return "bad_field";
      fields[k] = v;
    } else if (typeof v === "boolean" || typeof v === "string") {
      fields[k] = v;
    } else {
      return "bad_field";
    }
  }
  if (Object.keys(fields).length === 0) return "bad_field";
  return ts === undefined ? { kind: "telemetry", fields } : { kind: "telemetry", fields, ts };
}
