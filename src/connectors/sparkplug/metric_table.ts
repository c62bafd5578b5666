/**
 * The metrics a birth (NBIRTH/DBIRTH) declares for an edge node or device — name, datatype,
 * alias, properties — and how later DATA metrics are read with them (by alias or by name).
 * A table holds at most one birth's metrics, so it is bounded by the birth limit.
 * @module
 */
import {
  datatypeName,
  type KnownDatatype,
  type RawMetric,
  type Scalar,
  telemetryValue,
} from "./codec.ts";

/** A metric as its birth declared it. */
export interface MetricDef {
  name: string;
  datatype: KnownDatatype;
  alias?: number;
  properties?: Record<string, Scalar>;
}

/** Metric names that cannot be telemetry fields (the contract's `ts`, the metadata key). */
export const RESERVED_NAMES: ReadonlySet<string> = new Set(["ts", "$sparkplug", "bdSeq"]);

/** Longest metric name taken (the contract's field name limit). */
const MAX_NAME = 128;

/** What reading DATA metrics with a table found. */
export interface Read {
  fields: Record<string, Scalar>;
  /** Metrics whose alias (or name) the birth did not declare. */
  unknown: number;
  /** Metrics left out: null, historical, or a value that is not telemetry. */
  skipped: number;
}

/** One birth's metrics. */
export class MetricTable {
  readonly byName = new Map<string, MetricDef>();
  readonly byAlias = new Map<number, MetricDef>();
  /** Birth metrics refused: no name, an unknown datatype, a name too long, a duplicate. */
  refused = 0;

  /** The metrics of a birth; the values are read by {@linkcode MetricTable.read}. */
  static fromBirth(metrics: RawMetric[]): MetricTable {
    const t = new MetricTable();
    for (const m of metrics) {
      const name = m.name;
      const datatype = datatypeName(m.datatype);
      if (
        !name || name.length > MAX_NAME || datatype === "Unknown" || t.byName.has(name) ||
        (m.alias !== undefined && t.byAlias.has(m.alias))
      ) {
        t.refused++;
        continue;
      }
      const def: MetricDef = { name, datatype };
      if (m.alias !== undefined) def.alias = m.alias;
      if (m.properties) def.properties = m.properties;
      t.byName.set(name, def);
      if (m.alias !== undefined) t.byAlias.set(m.alias, def);
    }
    return t;
  }

  /** How many metrics the birth declared. */
  get size(): number {
    return this.byName.size;
  }

  /** The definition a DATA metric refers to: by name when it has one, else by alias. */
  lookup(m: RawMetric): MetricDef | undefined {
    if (m.name) return this.byName.get(m.name);
    return m.alias === undefined ? undefined : this.byAlias.get(m.alias);
  }

  /**
   * The telemetry fields of `metrics` (a DATA message, or the birth itself): field name =
   * metric name; the datatype is the message's or else the birth's.
   */
  read(metrics: RawMetric[]): Read {
    const out: Read = { fields: {}, unknown: 0, skipped: 0 };
    for (const m of metrics) {
      const def = this.lookup(m);
      if (!def) {
        out.unknown++;
        continue;
      }
      if (m.isNull || m.isHistorical || RESERVED_NAMES.has(def.name)) {
        out.skipped++;
        continue;
      }
      const type = m.datatype ? datatypeName(m.datatype) : def.datatype;
      const v = telemetryValue(type, m.value);
      if (v === undefined) out.skipped++;
      else out.fields[def.name] = v;
    }
    return out;
  }

  /**
   * The `$sparkplug.metrics` object of `reported`: per metric `{type, alias, properties}`
   * (`null` when the birth gave none: a JSON merge patch removes an earlier birth's), with
   * `detail` = false only its datatype name (a string: it replaces an earlier object), and
   * `null` for each metric of `before` this birth no longer declares.
   */
  describe(before: MetricTable | undefined, detail: boolean): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const d of this.byName.values()) {
      out[d.name] = detail
        ? { type: d.datatype, alias: d.alias ?? null, properties: d.properties ?? null }
        : d.datatype;
    }
    if (before) { for (const name of before.byName.keys()) if (!(name in out)) out[name] = null; }
    return out;
  }
}
