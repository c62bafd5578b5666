/**
 * Sparkplug B payloads with Eclipse Tahu's `sparkplug-payload`: decoding through its
 * protobuf classes (so a DATA metric without a datatype — the spec says it SHOULD NOT carry
 * one — keeps its value, typed later by its birth), encoding commands with its
 * `encodePayload`, and the host's JSON `STATE` payloads. Limits come first: the payload's
 * size, then its metrics counted on the wire before anything is decoded.
 * @module
 */
import * as spProto from "sparkplug-payload/lib/sparkplugPayloadProto.js";
import { get as sparkplugPayload } from "sparkplug-payload";

/** Sparkplug datatypes by their protobuf number (0 = unknown, left out). */
export const DATATYPES = [
  "Unknown",
  "Int8",
  "Int16",
  "Int32",
  "Int64",
  "UInt8",
  "UInt16",
  "UInt32",
  "UInt64",
  "Float",
  "Double",
  "Boolean",
  "String",
  "DateTime",
  "Text",
  "UUID",
  "DataSet",
  "Bytes",
  "File",
  "Template",
  "PropertySet",
  "PropertySetList",
] as const;

/** A Sparkplug datatype name. */
export type Datatype = (typeof DATATYPES)[number];

/** A datatype a birth may declare. */
export type KnownDatatype = Exclude<Datatype, "Unknown">;

/** A telemetry value. */
export type Scalar = number | boolean | string;

/** One metric as decoded: raw value as protobuf gave it (typed by `datatype` or the birth). */
export interface RawMetric {
  name?: string;
  alias?: number;
  /** 0 when the message left it out. */
  datatype: number;
  isNull: boolean;
  isHistorical: boolean;
  /** Which value field was set (`intValue`, `longValue`, …), if any. */
  field?: string;
  value: unknown;
  properties?: Record<string, Scalar>;
}

/** A decoded payload. */
export interface Decoded {
  timestamp?: number;
  seq?: number;
  uuid?: string;
  metrics: RawMetric[];
}

/** Why a payload could not be read. */
export type CodecError = "too_large" | "too_many_metrics" | "malformed" | "compressed";

/** The protobuf message the decoder gives (the fields read here). */
interface ProtoMetric {
  name: string;
  alias: unknown;
  datatype: number;
  isNull: boolean;
  isHistorical: boolean;
  value?: string;
  properties?: { keys?: string[]; values?: ProtoMetric[] } | null;
  type?: number;
  [field: string]: unknown;
}
interface ProtoPayload {
  timestamp: unknown;
  seq: unknown;
  uuid: string;
  metrics: ProtoMetric[];
}
const protoRoot = ((spProto as unknown as { default?: unknown }).default ?? spProto) as {
  org: {
    eclipse: { tahu: { protobuf: { Payload: { decode(b: Uint8Array): ProtoPayload } } } };
  };
};
const Payload = protoRoot.org.eclipse.tahu.protobuf.Payload;
const tahu = sparkplugPayload("spBv1.0")!;

/** The UUID of a payload compressed by Tahu's client (not accepted: a decompression bomb). */
const COMPRESSED_UUID = "SPBV1.0_COMPRESSED";
/** Properties kept per metric (scalars only). */
const MAX_PROPERTIES = 32;

/** A protobuf integer (number or `Long`) as a number (beyond 2^53: rounded). */
export function toNumber(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (v !== null && typeof v === "object" && "toNumber" in v) {
    return (v as { toNumber(): number }).toNumber();
  }
  return undefined;
}

/**
 * Count the top-level metrics (field 2) of a Payload on the wire, without decoding; null
 * when the bytes are not protobuf. Stops counting past `max`.
 */
export function countMetrics(b: Uint8Array, max: number): number | null {
  let i = 0;
  let n = 0;
  const varint = (): number | null => {
    let v = 0;
    for (let s = 0; s < 64; s += 7) {
      if (i >= b.length) return null;
      const c = b[i++];
      v += (c & 0x7f) * 2 ** s;
      if (c < 0x80) return v;
    }
    return null;
  };
  while (i < b.length) {
    const key = varint();
    if (key === null) return null;
    const wire = key % 8;
    if (wire === 0) {
      if (varint() === null) return null;
    } else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else if (wire === 2) {
      const len = varint();
      if (len === null || i + len > b.length) return null;
      i += len;
      if (Math.floor(key / 8) === 2 && ++n > max) return n;
    } else return null;
    if (i > b.length) return null;
  }
  return n;
}

function scalarOf(p: ProtoMetric): Scalar | undefined {
  const field = p.value;
  const v = field ? p[field] : undefined;
  if (typeof v === "string" || typeof v === "boolean") return v;
  const n = toNumber(v);
  return n !== undefined && Number.isFinite(n) ? n : undefined;
}

/**
 * Decode a payload of at most `maxBytes` with at most `maxMetrics` metrics, or say why not.
 * Never throws.
 */
export function decode(b: Uint8Array, maxBytes: number, maxMetrics: number): Decoded | CodecError {
  if (b.byteLength > maxBytes) return "too_large";
  const n = countMetrics(b, maxMetrics);
  if (n === null) return "malformed";
  if (n > maxMetrics) return "too_many_metrics";
  let p: ProtoPayload;
  try {
    p = Payload.decode(b);
  } catch {
    return "malformed";
  }
  const own = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);
  if (own(p, "uuid") && p.uuid === COMPRESSED_UUID) return "compressed";
  const metrics: RawMetric[] = [];
  for (const m of p.metrics ?? []) {
    const field = typeof m.value === "string" ? m.value : undefined;
    const r: RawMetric = {
      datatype: own(m, "datatype") ? m.datatype : 0,
      isNull: own(m, "isNull") && m.isNull === true,
      isHistorical: own(m, "isHistorical") && m.isHistorical === true,
      field,
      value: field ? m[field] : undefined,
    };
    if (own(m, "name")) r.name = m.name;
    if (own(m, "alias")) r.alias = toNumber(m.alias);
    const ps = m.properties;
    if (ps && ps.keys && ps.values) {
      const props: Record<string, Scalar> = {};
      let k = 0;
      for (let j = 0; j < ps.keys.length && k < MAX_PROPERTIES; j++) {
        const v = ps.values[j] ? scalarOf(ps.values[j]) : undefined;
        const key = ps.keys[j];
        if (v === undefined || key === "__proto__" || key.length > 128) continue;
        props[key] = v;
        k++;
      }
      if (k > 0) r.properties = props;
    }
    metrics.push(r);
  }
  const out: Decoded = { metrics };
  if (own(p, "timestamp")) out.timestamp = toNumber(p.timestamp);
  if (own(p, "seq")) out.seq = toNumber(p.seq);
  if (own(p, "uuid")) out.uuid = p.uuid;
  return out;
}

/** Name of a datatype number (`Unknown` when out of range). */
export function datatypeName(n: number): Datatype {
  return DATATYPES[n] ?? "Unknown";
}

/**
 * A metric's value as telemetry, typed by `datatype`: integers, floats and DateTime as
 * numbers, Boolean, String/Text/UUID as strings; anything else (DataSet, Bytes, File,
 * Template, property sets, null, NaN, infinities, a value of the wrong kind) undefined.
 */
export function telemetryValue(datatype: Datatype, raw: unknown): Scalar | undefined {
  switch (datatype) {
    case "Int8":
    case "Int16":
    case "Int32": {
      const n = toNumber(raw);
      return n === undefined ? undefined : n | 0; // a sint in an unsigned field
    }
    case "Int64": {
      const v = raw as { toSigned?(): { toNumber(): number } } | number;
      const n = typeof v === "object" && v?.toSigned ? v.toSigned().toNumber() : toNumber(v);
      return n;
    }
    case "UInt8":
    case "UInt16":
    case "UInt32":
    case "UInt64":
    case "DateTime":
    case "Float":
    case "Double": {
      const n = toNumber(raw);
      return n !== undefined && Number.isFinite(n) ? n : undefined;
    }
    case "Boolean":
      return typeof raw === "boolean" ? raw : undefined;
    case "String":
    case "Text":
    case "UUID":
      return typeof raw === "string" ? raw : undefined;
    default:
      return undefined;
  }
}

/** A metric to write in an NCMD/DCMD. */
export interface CommandMetric {
  name: string;
  alias?: number;
  datatype: KnownDatatype;
  value: Scalar;
}

/** Encode an NCMD/DCMD payload (no `seq`: commands carry none). */
export function encodeCommand(metrics: CommandMetric[], timestamp: number): Uint8Array {
  return tahu.encodePayload({
    timestamp,
    metrics: metrics.map((m) => ({
      name: m.name,
      ...(m.alias !== undefined ? { alias: m.alias } : {}),
      type: m.datatype,
      value: m.value,
    })),
  });
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** The host's STATE payload: `{"online":…,"timestamp":…}` (Sparkplug 3.0). */
export function statePayload(online: boolean, timestamp: number): Uint8Array {
  return encoder.encode(JSON.stringify({ online, timestamp }));
}

/** A STATE payload's `online` and `timestamp`, or null when it is not one (max 1 KiB). */
export function readState(b: Uint8Array): { online: boolean; timestamp: number } | null {
  if (b.byteLength > 1024) return null;
  try {
    const v = JSON.parse(decoder.decode(b));
    if (typeof v?.online !== "boolean" || typeof v?.timestamp !== "number") return null;
    return { online: v.online, timestamp: v.timestamp };
  } catch {
    return null;
  }
}
