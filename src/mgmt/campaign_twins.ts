/**
 * What the campaign driver does to twins: find a campaign's targets, read the twins of the
 * devices in flight, and make or withdraw offers (a merge patch of `desired.firmware`). Each
 * returns what it saw as observations for the next step.
 * @module
 */
import type { Clock } from "../runtime/clock.ts";
import type { Logger } from "../obs/log.ts";
import type { TwinState } from "../../actors/twin.ts";
import type { JsonObject } from "../../actors/json.ts";
import { TwinmillError } from "../errors.ts";
import {
  type Action,
  type Campaign,
  type DeviceRecord,
  isInFlight,
  LIMITS,
  type Observation,
} from "./campaign_model.ts";
import { interpret } from "./campaign_device.ts";

/** What the driver needs of the twins. */
export interface CampaignTwins {
  get(id: string): Promise<TwinState | null>;
  patchDesired(id: string, patch: JsonObject, ifMatch?: number): Promise<TwinState>;
  list(
    after: string | undefined,
    limit: number,
    filter: Record<string, string>,
  ): Promise<{ items: TwinState[]; next?: string }>;
}

/** Options of {@linkcode CampaignTwinIO}. */
export interface CampaignTwinIOOptions {
  twins: CampaignTwins;
  logger: Logger;
  clock: Clock;
  /** Twins read per campaign per tick (default 500). */
  pollsPerTick?: number;
  /** Concurrent twin reads and writes (default 16). */
  concurrency?: number;
}

/** Reads and offers of the campaign driver. */
export class CampaignTwinIO {
  readonly #o: CampaignTwinIOOptions;

  constructor(o: CampaignTwinIOOptions) {
    this.#o = o;
  }

  /** The targets: twins matching the selector, in id order, at most one more than allowed. */
  async targets(c: Campaign): Promise<string[]> {
    const filter = Object.fromEntries(
      Object.entries(c.spec.selector).map(([k, v]) => [k, String(v)]),
    );
    const ids: string[] = [];
    let after: string | undefined;
    do {
      const page = await this.#o.twins.list(after, 1000, filter);
      for (const t of page.items) ids.push(t.id);
      after = page.next;
    } while (after !== undefined && ids.length <= LIMITS.maxTargets);
    return ids.slice(0, LIMITS.maxTargets + 1);
  }

  /**
   * Read the twins of devices in flight (a bounded round per tick, from target index `cursor`
   * on); returns what they report and where the next round starts.
   */
  async poll(
    devices: readonly DeviceRecord[],
    cursor: number,
  ): Promise<{ obs: Observation[]; cursor: number }> {
    const flying: number[] = [];
    for (let i = 0; i < devices.length; i++) if (isInFlight(devices[i].state)) flying.push(i);
    if (flying.length === 0) return { obs: [], cursor };
    const max = this.#o.pollsPerTick ?? 500;
    let start = flying.findIndex((i) => i >= cursor);
    if (start < 0) start = 0;
    const pick = flying.length <= max ? flying : [...flying, ...flying].slice(start, start + max);
    const next = (pick[pick.length - 1] ?? 0) + 1;
    const out: Observation[] = [];
    await this.#each(pick, async (i) => {
      const twin = await this.#o.twins.get(devices[i].id);
      out.push(twin ? reportOf(i, twin) : { kind: "gone", device: i });
    }, "cannot read twin");
    return { obs: out, cursor: next };
  }

  /** Make the offers and withdrawals of campaign `c`; returns their outcomes for the next step. */
  async act(
    c: Campaign,
    devices: readonly DeviceRecord[],
    actions: Action[],
  ): Promise<Observation[]> {
    const out: Observation[] = [];
    const fw = c.spec.firmware;
    const offer = {
      firmware: {
        version: fw.version,
        url: `/v1/firmware/${encodeURIComponent(fw.id)}/download`,
        sha256: fw.sha256,
        size: fw.size,
        // null removes a signature left by an earlier offer (merge patch)
        signature: fw.signature ?? null,
        campaign: c.id,
      },
    };
    await this.#each(actions, async (a) => {
      if (a.kind === "offer") {
        try {
          await this.#o.twins.patchDesired(a.twin, offer);
          out.push({ kind: "offered", device: a.device, ts: this.#o.clock.now() });
        } catch (err) {
          const code = err instanceof TwinmillError ? err.code : undefined;
          out.push({
            kind: "offer_failed",
            device: a.device,
            error: code === "twin_not_found" ? "the twin no longer exists" : String(err),
            permanent: code === "twin_not_found",
          });
        }
        return;
      }
      // withdraw, unless a last look shows the device has started
      const twin = await this.#o.twins.get(a.twin);
      if (twin) {
        const report = reportOf(a.device, twin);
        if (interpret(c, devices[a.device], report.firmware, report.changedAt)) {
          out.push(report);
          return;
        }
        const offered = (twin.desired.firmware as JsonObject | undefined)?.campaign;
        if (offered === c.id) {
          await this.#o.twins.patchDesired(a.twin, { firmware: null }, twin.version);
        }
      }
      out.push({ kind: "withdrawn", device: a.device, ts: this.#o.clock.now() });
    }, "cannot withdraw offer");
    return out;
  }

  /** Run `fn` over `items`, a few at a time; failures are logged, not thrown. */
  async #each<T>(items: T[], fn: (x: T) => Promise<void>, what: string): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < items.length) {
        const x = items[next++];
        try {
          await fn(x);
        } catch (err) {
          this.#o.logger.debug(what, { err });
        }
      }
    };
    await Promise.all(Array.from({ length: this.#o.concurrency ?? 16 }, worker));
  }
}

/** What `twin` (target index `device`) reports about its firmware. */
function reportOf(device: number, twin: TwinState): Observation & { kind: "report" } {
  return {
    kind: "report",
    device,
    firmware: twin.reported.firmware,
    changedAt: twin.metadata.reported.firmware?.ts ?? null,
  };
}
