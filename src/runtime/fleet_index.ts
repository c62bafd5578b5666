/**
 * The fleet index of a twin host: its twins counted by site and line (the `site` and `line`
 * attributes) — connectivity, open alarms by state and severity, and device messages in the
 * last {@linkcode RATE_WINDOW_S} seconds — kept up to date as twins change, so that a fleet
 * summary (`GET /v1/fleet`) never reads every twin.
 *
 * Each twin has one small entry (its group, connectivity, and the immutable array of its open
 * alarms), so a change moves exactly its own contribution; a device message that changes none
 * of them costs a map lookup, a few comparisons and a counter. Twins untouched since the node
 * started (or took their shard) are added by {@linkcode FleetIndex.seed} from the snapshot
 * store; a released shard's twins leave with {@linkcode FleetIndex.drop}.
 *
 * Bounded: site and line are client-controlled, so at most {@linkcode MAX_GROUPS} groups are
 * kept; twins of any further group (or whose site or line is not a short string, number or
 * boolean) count in one `other` group until they change group.
 * @module
 */
import type { TwinRecord, TwinState } from "../../actors/twin.ts";
import type { Alarm } from "../../actors/rules/alarm.ts";
import { SEVERITIES } from "../../actors/rules/profile_schema.ts";

/** The window of the message rate (s). */
export const RATE_WINDOW_S = 10;
/** Most site/line groups a node keeps. */
export const MAX_GROUPS = 1000;
/** Longest site or line value that makes a group of its own. */
const MAX_KEY = 256;
const SLOTS = RATE_WINDOW_S + 1;
/** Marks a site or line value that cannot make a group (the `other` group). */
const OTHER = Symbol("other");
const CONN = { online: 0, offline: 1, unknown: 2 } as const;
const SEV = new Map<string, number>(SEVERITIES.map((s, i) => [s, i]));

/** The counts of one group of twins, as nodes send them (alarm counts in `SEVERITIES` order). */
export interface FleetGroup {
  /** The `site` attribute (string form), null when the twin has none; absent in `other`. */
  site?: string | null;
  line?: string | null;
  twins: number;
  /** Twins online, offline, unknown. */
  connectivity: [number, number, number];
  /** Open alarms not acknowledged, by severity. */
  active: number[];
  /** Open alarms acknowledged, by severity. */
  acknowledged: number[];
  /** Device messages in the last {@linkcode RATE_WINDOW_S} complete seconds. */
  messages: number;
}

/** One node's fleet: its groups, and whether every twin it owns is counted yet. */
export interface NodeFleet {
  node: string;
  /** False while twins of this node are still being read from the store (start, new shards). */
  complete: boolean;
  groups: FleetGroup[];
  other: FleetGroup | null;
}

type Key = string | null | typeof OTHER;

const keyOf = (v: unknown): Key =>
  v === undefined || v === null
    ? null
    : typeof v === "string"
    ? (v.length <= MAX_KEY ? v : OTHER)
    : typeof v === "number" || typeof v === "boolean"
    ? String(v)
    : OTHER;

/** The map key of a group (null and "" differ). */
const groupKey = (site: string | null, line: string | null) =>
  `${site === null ? "\u0001" : "\u0002" + site}\u0000${
    line === null ? "\u0001" : "\u0002" + line
  }`;

/** The twins of one site and line. */
class Group {
  twins = 0;
  readonly conn: [number, number, number] = [0, 0, 0];
  readonly active: number[] = SEVERITIES.map(() => 0);
  readonly acked: number[] = SEVERITIES.map(() => 0);
  /** Messages per second, by second modulo SLOTS; made on the first message. */
  slots: Uint32Array | undefined;
  /** The last second counted. */
  sec = 0;

  constructor(readonly site: Key, readonly line: Key) {}

  count(now: number): void {
    const sec = Math.floor(now / 1000);
    const slots = this.slots ??= new Uint32Array(SLOTS);
    if (sec !== this.sec) {
      // seconds without messages since the last one: zero their slots
      for (let s = Math.max(this.sec + 1, sec - SLOTS + 1); s <= sec; s++) slots[s % SLOTS] = 0;
      this.sec = sec;
    }
    slots[sec % SLOTS]++;
  }

  /** Messages in the {@linkcode RATE_WINDOW_S} complete seconds before `now`. */
  messages(now: number): number {
    if (!this.slots) return 0;
    const sec = Math.floor(now / 1000);
    let n = 0;
    for (let s = sec - RATE_WINDOW_S; s < sec; s++) {
      if (s <= this.sec && s > this.sec - SLOTS) n += this.slots[s % SLOTS];
    }
    return n;
  }

  view(now: number): FleetGroup {
    return {
      ...(this.site === OTHER ? {} : { site: this.site, line: this.line as string | null }),
      twins: this.twins,
      connectivity: [...this.conn],
      active: [...this.active],
      acknowledged: [...this.acked],
      messages: this.messages(now),
    };
  }
}

/** A twin's contribution: its group, connectivity, open alarms (immutable, by reference). */
interface Entry {
  g: Group;
  c: number;
  a: Alarm[] | undefined;
}

/** Options of a {@linkcode FleetIndex}. */
export interface FleetIndexOptions {
  /** False for twins this node does not own (cluster): they are not added. */
  owns?(id: string): boolean;
}

/** The fleet index of one twin host. */
export class FleetIndex {
  readonly #owns: (id: string) => boolean;
  readonly #entries = new Map<string, Entry>();
  readonly #groups = new Map<string, Group>();
  readonly #other = new Group(OTHER, OTHER);
  #seeding = 0;
  #awaiting = false;

  constructor(o: FleetIndexOptions = {}) {
    this.#owns = o.owns ?? (() => true);
  }

  /** Twins counted. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Twin `id` is now `s` (after a change); `message`: a device message was applied to it at
   * `now` (counted in its group's rate). The hot path: call it for every applied change.
   */
  apply(id: string, s: TwinState, message: boolean, now: number): void {
    let e = this.#entries.get(id);
    if (
      e === undefined || e.a !== s.alarms || e.c !== CONN[s.connectivity.status] ||
      e.g.site !== keyOf(s.attributes.site) || e.g.line !== keyOf(s.attributes.line)
    ) {
      if (e === undefined && (s.version === 0 || !this.#owns(id))) return;
      e = this.#set(id, s, e);
    }
    if (message) e.g.count(now);
  }

  /**
   * Add the stored twins not counted yet that `want` (and the node) owns — after a start, or
   * after taking shards. A twin changed meanwhile is counted from its change, not from here.
   */
  async seed(
    records: AsyncIterable<TwinRecord>,
    want: (id: string) => boolean = () => true,
  ): Promise<number> {
    this.#seeding++;
    this.#awaiting = false;
    let n = 0;
    try {
      for await (const r of records) {
        const id = r.state.id;
        if (this.#entries.has(id) || r.state.version === 0 || !want(id) || !this.#owns(id)) {
          continue;
        }
        this.#set(id, r.state, undefined);
        n++;
      }
    } finally {
      this.#seeding--;
    }
    return n;
  }

  /** A {@linkcode seed} is due (shards were taken): the counts are incomplete until it runs. */
  awaitSeed(): void {
    this.#awaiting = true;
  }

  /** Forget the matching twins (their shard went to another node). */
  drop(pred: (id: string) => boolean): void {
    for (const [id, e] of this.#entries) {
      if (!pred(id)) continue;
      this.#remove(e);
      this.#entries.delete(id);
    }
  }

  /** This node's groups at `now`; `sites`: only these sites (and no `other` group). */
  summary(node: string, now: number, sites?: readonly string[]): NodeFleet {
    const groups: FleetGroup[] = [];
    for (const g of this.#groups.values()) {
      if (sites && !sites.includes(g.site as string)) continue;
      groups.push(g.view(now));
    }
    const other = !sites && (this.#other.twins > 0 || this.#other.slots)
      ? this.#other.view(now)
      : null;
    return { node, complete: this.#seeding === 0 && !this.#awaiting, groups, other };
  }

  #set(id: string, s: TwinState, old: Entry | undefined): Entry {
    if (old) this.#remove(old);
    const e: Entry = {
      g: this.#group(keyOf(s.attributes.site), keyOf(s.attributes.line)),
      c: CONN[s.connectivity.status],
      a: s.alarms,
    };
    this.#add(e, 1);
    this.#entries.set(id, e);
    return e;
  }

  #group(site: Key, line: Key): Group {
    if (site === OTHER || line === OTHER) return this.#other;
    const key = groupKey(site, line);
    let g = this.#groups.get(key);
    if (g === undefined) {
      if (this.#groups.size >= MAX_GROUPS) return this.#other;
      this.#groups.set(key, g = new Group(site, line));
    }
    return g;
  }

  #remove(e: Entry): void {
    this.#add(e, -1);
    const g = e.g;
    if (g.twins === 0 && g !== this.#other) {
      this.#groups.delete(groupKey(g.site as string | null, g.line as string | null));
    }
  }

  #add(e: Entry, d: 1 | -1): void {
    const g = e.g;
    g.twins += d;
    g.conn[e.c] += d;
    for (const a of e.a ?? []) {
      const i = SEV.get(a.severity);
      if (i === undefined || a.state === "cleared") continue;
      (a.state === "acknowledged" ? g.acked : g.active)[i] += d;
    }
  }
}
