/**
 * The host application's view of the edge nodes (Sparkplug B 3.0), as a pure state machine:
 * a decoded message in, the twin changes it makes and whether to ask for a rebirth out.
 *
 * | message | edge node | effect |
 * | --- | --- | --- |
 * | NBIRTH | any | born: bdSeq, seq and metrics kept; its devices wait for their DBIRTH; twin online, metadata, values |
 * | NDEATH | born, bdSeq of its NBIRTH | dead: the twin and its born devices offline |
 * | NDEATH | other bdSeq, or dead | stale (an earlier session's will): ignored |
 * | any but NBIRTH/NDEATH | unsettled (a message not made durable) | as not born: rebirth asked |
 * | NDEATH | unknown (not heard since this node started) | its twin offline (bdSeq unknowable) |
 * | NDATA, DBIRTH, DDATA, DDEATH | not born | refused `no_birth`; rebirth asked |
 * | same | born, seq = last | a resend: ignored |
 * | same | born, seq ≠ last + 1 (mod 256) | applied; rebirth asked (`seq_gap`) |
 * | DDATA | device not born | refused `no_birth`; rebirth asked |
 * | N/DDATA | unknown alias | the known metrics applied; rebirth asked; none known: refused `unknown_alias` |
 *
 * Bounded: at most `maxEdgeNodes` edge nodes, `maxDevices` devices per edge node,
 * `maxMetricsTotal` birth metrics in all. When full, the longest-unborn entry is forgotten;
 * when every entry is born, the newcomer is refused (`too_many_edge_nodes`,
 * `too_many_devices`, `too_many_metrics`). Rebirth requests: at most one per edge node per
 * `rebirthIntervalMs`.
 * @module
 */
import { type Decoded, type Scalar, toNumber } from "./codec.ts";
import { MetricTable } from "./metric_table.ts";
import type { SparkplugReason } from "./port.ts";
import type { SparkplugTopic } from "./topic.ts";

/** Bounds of {@linkcode EdgeNodes}. */
export interface EdgeLimits {
  maxEdgeNodes: number;
  maxDevices: number;
  maxMetricsTotal: number;
  rebirthIntervalMs: number;
}

/** Defaults of {@linkcode EdgeLimits}. */
export const DEFAULT_EDGE_LIMITS: Readonly<EdgeLimits> = Object.freeze({
  maxEdgeNodes: 10_000,
  maxDevices: 1_000,
  maxMetricsTotal: 1_000_000,
  rebirthIntervalMs: 5_000,
});

/** A change to a twin, submitted as the device message of the same kind. */
export type Change =
  | { twin: string; kind: "status"; online: boolean }
  | {
    twin: string;
    kind: "reported";
    meta: { table: MetricTable; before?: MetricTable; bdSeq?: number };
  }
  | { twin: string; kind: "telemetry"; fields: Record<string, Scalar>; ts?: number };

/** What one message does. */
export interface Step {
  changes: Change[];
  /** Refused: nothing applied. */
  refused?: SparkplugReason;
  /** Ask the edge node for a rebirth (already rate limited), and why. */
  rebirth?: "seq_gap" | "no_birth" | "unknown_alias";
  /** Ignored as a resend (`duplicate`) or an earlier session's death (`stale_death`). */
  ignored?: "duplicate" | "stale_death";
  /** Metrics left out (unknown, null, historical, not telemetry, refused in a birth). */
  skipped: number;
}

/** A twin the host knows: an edge node or a device. */
export interface Known {
  twin: string;
  born: boolean;
  metrics: MetricTable;
  /** Last desired value written per metric (JSON), so a desired change writes what changed. */
  written: Map<string, string>;
  /** When it was last born (ms); -1: never, on this node. */
  bornAt: number;
}

/** An edge node. */
export interface Edge extends Known {
  /** The MQTT side it was last heard on. */
  link: number;
  bdSeq?: number;
  lastSeq: number;
  devices: Map<string, Known>;
  askedAt: number;
  /** Born, but a message of it was not made durable: its next message asks for a rebirth. */
  unsettled: boolean;
}

const unknownTable = new MetricTable();
const fresh = (twin: string): Known => ({
  twin,
  born: false,
  metrics: unknownTable,
  written: new Map(),
  bornAt: -1,
});

/** The edge nodes of one host application. */
export class EdgeNodes {
  readonly #edges = new Map<string, Edge>();
  #metrics = 0;
  constructor(readonly limits: EdgeLimits = DEFAULT_EDGE_LIMITS) {}

  /** Edge nodes known (born or not). */
  get size(): number {
    return this.#edges.size;
  }

  /** The known edge node or device of a twin id. */
  find(twin: string): { edge: Edge; known: Known } | undefined {
    const p = twin.split(":");
    const edge = p.length === 2 || p.length === 3 ? this.#edges.get(`${p[0]}:${p[1]}`) : undefined;
    if (!edge) return undefined;
    const known = p.length === 2 ? edge : edge.devices.get(p[2]);
    return known ? { edge, known } : undefined;
  }

  /** Born edge nodes and devices. */
  get born(): number {
    let n = 0;
    for (const e of this.#edges.values()) {
      if (!e.born) continue;
      n++;
      for (const d of e.devices.values()) if (d.born) n++;
    }
    return n;
  }

  /**
   * The edge node's last message was not made durable (so not acknowledged): its resend
   * would be taken for a duplicate, so it must be born again (its next message asks).
   */
  unsettle(edgeTwin: string): void {
    const e = this.#edges.get(edgeTwin);
    if (!e?.born) return;
    e.born = false;
    e.unsettled = true;
  }

  /** Forget the edge nodes last heard on `link` (that MQTT side is gone). */
  forgetLink(link: number): void {
    for (const [k, e] of this.#edges) {
      if (e.link === link) this.#drop(k, e);
    }
  }

  /** Apply one decoded message of an edge node or device, at `now`, heard on `link`. */
  receive(
    t: Extract<SparkplugTopic, { kind: "edge" }>,
    d: Decoded,
    link: number,
    now: number,
  ): Step {
    const step: Step = { changes: [], skipped: 0 };
    let e = this.#edges.get(t.edgeTwin);
    if (t.type === "NBIRTH") return this.#nodeBirth(t.edgeTwin, e, d, link, now, step);
    if (t.type === "NDEATH") return this.#nodeDeath(t.edgeTwin, e, d, step);
    if (!e || !e.born) {
      e ??= this.#admit(t.edgeTwin, link);
      step.refused = "no_birth";
      if (e) this.#askRebirth(e, now, step, "no_birth");
      return step;
    }
    e.link = link;
    const seq = d.seq ?? -1;
    if (seq === e.lastSeq) return { ...step, ignored: "duplicate" };
    if (seq !== (e.lastSeq + 1) % 256) this.#askRebirth(e, now, step, "seq_gap");
    e.lastSeq = seq;
    if (t.type === "NDATA") return this.#data(e, e, d, now, step);
    const name = t.device!;
    if (t.type === "DBIRTH") return this.#deviceBirth(e, name, t.twin, d, now, step);
    const dev = e.devices.get(name);
    if (t.type === "DDEATH") {
      if (dev?.born) {
        dev.born = false;
        step.changes.push({ twin: dev.twin, kind: "status", online: false });
      }
      return step;
    }
    if (!dev?.born) {
      this.#askRebirth(e, now, step, "no_birth");
      return { ...step, refused: "no_birth" };
    }
    return this.#data(e, dev, d, now, step);
  }

  #nodeBirth(
    key: string,
    e: Edge | undefined,
    d: Decoded,
    link: number,
    now: number,
    step: Step,
  ): Step {
    e ??= this.#admit(key, link);
    if (!e) return { ...step, refused: "too_many_edge_nodes" };
    const table = MetricTable.fromBirth(d.metrics);
    if (!this.#budget(table.size - e.metrics.size)) return { ...step, refused: "too_many_metrics" };
    const before = e.metrics.size > 0 ? e.metrics : undefined;
    this.#metrics += table.size - e.metrics.size;
    this.#edges.delete(key); // most recently born last
    this.#edges.set(key, e);
    e.bdSeq = bdSeqOf(d);
    e.link = link;
    e.born = true;
    e.bornAt = now;
    e.metrics = table;
    e.lastSeq = d.seq ?? 0;
    e.askedAt = -Infinity;
    e.unsettled = false;
    e.written.clear();
    for (const dev of e.devices.values()) dev.born = false; // each sends its DBIRTH again
    return this.#birthChanges(e, before, d, step, e.bdSeq);
  }

  #deviceBirth(e: Edge, name: string, twin: string, d: Decoded, now: number, step: Step): Step {
    let dev = e.devices.get(name);
    if (!dev) {
      if (e.devices.size >= this.limits.maxDevices && !this.#evictUnborn(e.devices)) {
        return { ...step, refused: "too_many_devices" };
      }
      e.devices.set(name, dev = fresh(twin));
    }
    const table = MetricTable.fromBirth(d.metrics);
    if (!this.#budget(table.size - dev.metrics.size)) {
      return { ...step, refused: "too_many_metrics" };
    }
    const before = dev.metrics.size > 0 ? dev.metrics : undefined;
    this.#metrics += table.size - dev.metrics.size;
    e.devices.delete(name);
    e.devices.set(name, dev);
    dev.born = true;
    dev.bornAt = now;
    dev.metrics = table;
    dev.written.clear();
    return this.#birthChanges(dev, before, d, step);
  }

  #birthChanges(
    k: Known,
    before: MetricTable | undefined,
    d: Decoded,
    step: Step,
    bdSeq?: number,
  ): Step {
    const r = k.metrics.read(d.metrics);
    step.skipped += k.metrics.refused + r.skipped;
    step.changes.push(
      { twin: k.twin, kind: "status", online: true },
      { twin: k.twin, kind: "reported", meta: { table: k.metrics, before, bdSeq } },
    );
    if (Object.keys(r.fields).length > 0) step.changes.push(telemetry(k.twin, r.fields, d));
    return step;
  }

  #nodeDeath(key: string, e: Edge | undefined, d: Decoded, step: Step): Step {
    if (!e || e.bornAt < 0) {
      // born before this node started (its birth is not known here): the edge node's twin
      // must not stay online; a stale will is healed by the rebirth its next data asks for
      step.changes.push({ twin: key, kind: "status", online: false });
      return step;
    }
    const bdSeq = bdSeqOf(d);
    const alive = e.born || e.unsettled;
    if (!alive || (e.bdSeq !== undefined && bdSeq !== undefined && bdSeq !== e.bdSeq)) {
      return { ...step, ignored: "stale_death" };
    }
    e.born = false;
    e.unsettled = false;
    step.changes.push({ twin: e.twin, kind: "status", online: false });
    for (const dev of e.devices.values()) {
      if (!dev.born) continue;
      dev.born = false;
      step.changes.push({ twin: dev.twin, kind: "status", online: false });
    }
    return step;
  }

  #data(e: Edge, k: Known, d: Decoded, now: number, step: Step): Step {
    const r = k.metrics.read(d.metrics);
    step.skipped += r.unknown + r.skipped;
    if (r.unknown > 0) this.#askRebirth(e, now, step, "unknown_alias");
    if (Object.keys(r.fields).length > 0) step.changes.push(telemetry(k.twin, r.fields, d));
    else if (r.unknown > 0) step.refused = "unknown_alias";
    return step;
  }

  #askRebirth(e: Edge, now: number, step: Step, why: NonNullable<Step["rebirth"]>): void {
    if (step.rebirth || now - e.askedAt < this.limits.rebirthIntervalMs) return;
    e.askedAt = now;
    step.rebirth = why;
  }

  /** A new edge node entry, forgetting the longest-unborn one when full; null: all born. */
  #admit(key: string, link: number): Edge | undefined {
    if (this.#edges.size >= this.limits.maxEdgeNodes) {
      let old: [string, Edge] | undefined;
      for (const entry of this.#edges) if (!entry[1].born && (old = entry)) break;
      if (!old) return undefined;
      this.#drop(old[0], old[1]);
    }
    const e: Edge = {
      ...fresh(key),
      link,
      lastSeq: -1,
      devices: new Map(),
      askedAt: -Infinity,
      unsettled: false,
    };
    this.#edges.set(key, e);
    return e;
  }

  #evictUnborn(devices: Map<string, Known>): boolean {
    for (const [name, dev] of devices) {
      if (dev.born) continue;
      this.#metrics -= dev.metrics.size;
      devices.delete(name);
      return true;
    }
    return false;
  }

  #drop(key: string, e: Edge): void {
    this.#metrics -= e.metrics.size;
    for (const dev of e.devices.values()) this.#metrics -= dev.metrics.size;
    this.#edges.delete(key);
  }

  #budget(more: number): boolean {
    return this.#metrics + more <= this.limits.maxMetricsTotal;
  }
}

/** The `bdSeq` metric of an NBIRTH or NDEATH. */
function bdSeqOf(d: Decoded): number | undefined {
  const bd = d.metrics.find((m) => m.name === "bdSeq");
  return bd ? toNumber(bd.value) : undefined;
}

function telemetry(twin: string, fields: Record<string, Scalar>, d: Decoded): Change {
  const ts = d.timestamp;
  return ts !== undefined && Number.isFinite(ts) && ts >= 0
    ? { twin, kind: "telemetry", fields, ts: Math.trunc(ts) }
    : { twin, kind: "telemetry", fields };
}
