/**
 * Runs campaigns: on every tick, for each active campaign this node drives, it reads the twins
 * of the devices in flight, feeds what it saw to the pure {@linkcode step}, stores the result
 * (compare-and-set), and only then makes the offers and withdrawals it asked for. The results
 * of those go into the next step.
 *
 * Which node drives a campaign: the one whose `owns(id)` is true — in cluster mode the owner of
 * the campaign id's shard, so exactly one node drives it while shard ownership is settled;
 * during a handoff two may overlap briefly, and compare-and-set on every write makes the loser
 * re-read and redo its step instead of overwriting. A restarted node picks up every active
 * campaign from the store.
 * @module
 */
import { randomBytes } from "node:crypto";
import type { TimerId } from "../runtime/clock.ts";
import type { Logger } from "../obs/log.ts";
import type { Transport } from "../transport/port.ts";
import { subjects } from "../transport/subjects.ts";
import { begin, eventOf } from "./campaigns.ts";
import {
  type Campaign,
  CAMPAIGN_STATES,
  type CampaignEvent,
  type CampaignState,
  DEVICE_STATES,
  type DeviceState,
  isTerminal,
  type StepResult,
} from "./campaign_model.ts";
import { step } from "./campaign_step.ts";
import { CampaignTwinIO, type CampaignTwinIOOptions } from "./campaign_twins.ts";
import type { CampaignStore } from "./campaign_store.ts";
import { type Held, storeBegun, storeStep } from "./campaign_writes.ts";

/** What the driver needs of the firmware store. */
export interface FirmwareLookup {
  get(id: string): Promise<{ id: string } | null>;
}

/** Options of {@linkcode CampaignDriver}. */
export interface DriverOptions extends CampaignTwinIOOptions {
  store: CampaignStore;
  firmware: FirmwareLookup;
  transport: Transport;
  /** Time between ticks (ms). */
  tickMs: number;
  /** True when this node drives campaign `id` (default: every campaign). */
  owns?(id: string): boolean;
}

/** Steps per campaign per tick (a step's offers are recorded by the next one at once). */
const STEPS_PER_TICK = 3;

/** Drives the campaigns this node owns. */
export class CampaignDriver implements AsyncDisposable {
  readonly #o: DriverOptions;
  readonly #log: Logger;
  readonly #io: CampaignTwinIO;
  readonly #held = new Map<string, Held>();
  /** Ids of campaigns that may need driving (from the last listing, plus pokes). */
  readonly #active = new Set<string>();
  #timer: TimerId | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;
  #lastList = -Infinity;

  constructor(o: DriverOptions) {
    this.#o = o;
    this.#log = o.logger;
    this.#io = new CampaignTwinIO(o);
  }

  /** Start ticking. */
  start(): void {
    this.#schedule(0);
  }

  /** Campaign `id` was created or changed here: look at it on the next tick. */
  poke(id: string): void {
    this.#active.add(id);
  }

  /** Campaigns held in memory (tests, metrics). */
  get held(): number {
    return this.#held.size;
  }

  /**
   * The unfinished campaigns this node drives, by state (scheduled, running, waiting_window,
   * paused); every state is present, zero when none. A campaign leaves these counts once it
   * ends (completed, cancelled or failed).
   */
  campaignCounts(): Partial<Record<CampaignState, number>> {
    const counts: Partial<Record<CampaignState, number>> = zeros(
      CAMPAIGN_STATES.filter((s) => !isTerminal(s)),
    );
    for (const c of this.#unfinished()) counts[c.c.state] = (counts[c.c.state] ?? 0) + 1;
    return counts;
  }

  /** The devices of {@linkcode campaignCounts}' campaigns by state (every state present). */
  deviceCounts(): Record<DeviceState, number> {
    const counts = zeros(DEVICE_STATES);
    for (const h of this.#unfinished()) for (const d of h.devices) counts[d.state]++;
    return counts;
  }

  /** Held campaigns that have not ended (a cancelled one may still be withdrawing offers). */
  #unfinished(): Held[] {
    return [...this.#held.values()].filter((h) => !isTerminal(h.c.state));
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#running = this.tick().finally(() => {
        this.#running = undefined;
        this.#schedule(this.#o.tickMs);
      });
    }, ms);
  }

  /** One tick over every active campaign this node drives. Tests call it directly. */
  async tick(): Promise<void> {
    const now = this.#o.clock.now();
    try {
      if (now - this.#lastList >= Math.max(1000, this.#o.tickMs * 10)) {
        this.#lastList = now;
        for (const d of await this.#o.store.list()) {
          if (active(d.value)) this.#active.add(d.key);
        }
      }
    } catch (err) {
      this.#log.warn("cannot list campaigns", { err });
    }
    for (const id of [...this.#active]) {
      if (this.#stopped) return;
      if (!(this.#o.owns?.(id) ?? true)) {
        this.#held.delete(id);
        continue;
      }
      try {
        if (!(await this.#drive(id))) {
          this.#active.delete(id);
          this.#held.delete(id);
        }
      } catch (err) {
        this.#held.delete(id); // re-read everything next time
        this.#log.warn("campaign tick failed", { campaign: id, err });
      }
    }
  }

  /** Drive one campaign; false when it needs no more driving. */
  async #drive(id: string): Promise<boolean> {
    const doc = await this.#o.store.get(id);
    if (!doc) return false;
    let h = this.#held.get(id);
    if (!h || h.version !== doc.version) {
      // first look, or someone else wrote it (a user action, another node): re-read all
      if (!active(doc.value)) return false;
      const { devices, chunks } = doc.value.state === "scheduled"
        ? { devices: [], chunks: [] }
        : await this.#o.store.devices(doc.value);
      h = {
        c: doc.value,
        version: doc.version,
        devices,
        chunks,
        pending: h?.pending ?? [],
        cursor: h?.cursor ?? 0,
      };
      this.#held.set(id, h);
    }
    if (!active(h.c)) return false;
    if (h.c.state === "scheduled") {
      const more = await this.#begin(h);
      // begun: go on to the first offers in the same tick
      if (!more || this.#held.get(id) !== h || h.c.state === "scheduled") return more;
    }
    const polled = await this.#io.poll(h.devices, h.cursor);
    h.cursor = polled.cursor;
    const obs = [...h.pending.splice(0), ...polled.obs];
    for (let i = 0; i < STEPS_PER_TICK; i++) {
      const now = this.#o.clock.now();
      const r = step(h.c, h.devices, i === 0 ? obs : h.pending.splice(0), now);
      if (!(await this.#commit(h, r, now))) return true;
      if (r.actions.length === 0) break;
      h.pending.push(...await this.#io.act(h.c, h.devices, r.actions));
    }
    return active(h.c);
  }

  /** Resolve the targets of a scheduled campaign whose time has come. */
  async #begin(h: Held): Promise<boolean> {
    const now = this.#o.clock.now();
    const c = h.c;
    if (c.spec.startAt !== undefined && now < c.spec.startAt) return true;
    let r: ReturnType<typeof begin>;
    if (!(await this.#o.firmware.get(c.spec.firmware.id))) {
      const failed: Campaign = {
        ...c,
        state: "failed",
        reason: `firmware "${c.spec.firmware.id}" no longer exists`,
        finishedAt: now,
      };
      r = { campaign: failed, devices: [], events: [] };
      r.events.push({ event: "state", state: "failed", reason: failed.reason, wave: null });
    } else {
      r = begin(c, await this.#io.targets(c), now, randomBytes(4).toString("hex"));
    }
    const stored = await storeBegun(this.#o.store, h, r, now);
    if (stored === "retry") return true; // try again next tick
    if (stored === "lost") {
      this.#held.delete(c.id);
      return true;
    }
    const next = stored.c;
    Object.assign(h, {
      c: next,
      version: stored.version,
      devices: r.devices,
      chunks: stored.chunks,
    });
    this.#publish(next, r.events, 0);
    return active(next);
  }

  /** Store a step's result; false when someone else wrote first (re-read next tick). */
  async #commit(h: Held, r: StepResult, now: number): Promise<boolean> {
    const stored = await storeStep(this.#o.store, h, r, now);
    if (stored === "conflict") {
      this.#held.delete(h.c.id);
      return false;
    }
    if (stored === "stored") this.#publish(h.c, r.events, r.droppedEvents);
    return true;
  }

  #publish(c: Campaign, events: CampaignEvent[], dropped: number): void {
    const ts = this.#o.clock.now();
    for (const e of events) {
      this.#o.transport.publish(subjects.event("campaign", c.id), eventOf(c, e, ts));
      if (e.event === "device") this.#log.debug("campaign device", { campaign: c.id, ...e });
      else {this.#log.info(e.event === "state" ? "campaign state" : "campaign wave", {
          campaign: c.id,
          ...e,
        });}
    }
    if (dropped > 0) {
      this.#log.info("campaign device events not sent (too many in one step)", {
        campaign: c.id,
        dropped,
      });
    }
  }

  /** Stop ticking; waits for a tick under way. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#o.clock.clear(this.#timer);
    await this.#running;
  }
}

/** Each of `states` with a count of 0. */
function zeros<S extends string>(states: readonly S[]): Record<S, number> {
  return Object.fromEntries(states.map((s) => [s, 0])) as Record<S, number>;
}

/** A campaign that needs driving. */
function active(c: Campaign): boolean {
  return !isTerminal(c.state) || (c.state === "cancelled" && c.cleanup);
}
