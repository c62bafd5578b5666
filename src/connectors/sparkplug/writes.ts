/**
 * Downlink to Sparkplug devices: a twin's desired state and its commands become NCMD/DCMD
 * writes of the metrics its birth declared, typed by the birth. Desired state: each
 * top-level key named like a metric, written when its value changed since the last write
 * (or the birth). Commands: `name` = the metric, `args.value` = the value to write.
 * @module
 */
import type { Command } from "../../../actors/commands.ts";
import type { CommandMetric, Datatype, Scalar } from "./codec.ts";
import type { Known } from "./edge_nodes.ts";

const INT_RANGES: Partial<Record<Datatype, [number, number]>> = {
  Int8: [-128, 127],
  Int16: [-32768, 32767],
  Int32: [-2147483648, 2147483647],
  Int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  UInt8: [0, 255],
  UInt16: [0, 65535],
  UInt32: [0, 4294967295],
  UInt64: [0, Number.MAX_SAFE_INTEGER],
  DateTime: [0, Number.MAX_SAFE_INTEGER],
};

/** `v` as a value of `datatype`, or undefined when it is not one (wrong kind, out of range). */
export function writeValue(datatype: Datatype, v: unknown): Scalar | undefined {
  const range = INT_RANGES[datatype];
  if (range) {
    return typeof v === "number" && Number.isInteger(v) && v >= range[0] && v <= range[1]
      ? v
      : undefined;
  }
  switch (datatype) {
    case "Float":
    case "Double":
      return typeof v === "number" && Number.isFinite(v) ? v : undefined;
    case "Boolean":
      return typeof v === "boolean" ? v : undefined;
    case "String":
    case "Text":
    case "UUID":
      return typeof v === "string" ? v : undefined;
    default:
      return undefined;
  }
}

/** What a write found. */
export interface Writes {
  metrics: CommandMetric[];
  /** Keys named like a metric whose value is not of its datatype. */
  refused: string[];
}

function metricOf(k: Known, name: string, v: unknown, w: Writes): CommandMetric | undefined {
  const def = k.metrics.byName.get(name);
  if (!def) return undefined;
  const value = writeValue(def.datatype, v);
  if (value === undefined) {
    w.refused.push(name);
    return undefined;
  }
  return {
    name,
    datatype: def.datatype,
    value,
    ...(def.alias !== undefined ? { alias: def.alias } : {}),
  };
}

/** The writes of a desired state: the metrics whose value changed since the last write. */
export function desiredWrites(k: Known, desired: Record<string, unknown>): Writes {
  const w: Writes = { metrics: [], refused: [] };
  for (const [name, v] of Object.entries(desired)) {
    const json = JSON.stringify(v);
    if (!k.metrics.byName.has(name) || k.written.get(name) === json) continue;
    const m = metricOf(k, name, v, w);
    if (!m) continue;
    k.written.set(name, json);
    w.metrics.push(m);
  }
  return w;
}

/** The writes of commands; `ids` of those written (the others stay pending). */
export function commandWrites(k: Known, cmds: Command[]): Writes & { ids: string[] } {
  const w = { metrics: [] as CommandMetric[], refused: [] as string[], ids: [] as string[] };
  for (const c of cmds) {
    const m = metricOf(k, c.name, c.args.value, w);
    if (!m) continue;
    w.metrics.push(m);
    w.ids.push(c.id);
  }
  return w;
}
