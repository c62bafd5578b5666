/**
 * Campaigns as the API sees them: create (checked, firmware looked up), read, list, per-device
 * records, and the user's pause, resume, cancel and delete — each a compare-and-set of the
 * campaign document, retried on conflict, announced as a campaign event. The driver on the node
 * that owns the campaign does the rest.
 * @module
 */
import { randomBytes } from "node:crypto";
import type { Clock } from "../runtime/clock.ts";
import type { Logger } from "../obs/log.ts";
import type { Transport } from "../transport/port.ts";
import { subjects } from "../transport/subjects.ts";
import { BadRequestError, TwinmillError } from "../errors.ts";
import { attributeNameProblem } from "../../actors/attributes.ts";
import { cancel, createCampaign, eventOf, pause, resume } from "./campaigns.ts";
import {
  type Campaign,
  type CampaignSpec,
  CampaignStateError,
  type DeviceRecord,
  type DeviceState,
  type FirmwareRef,
  isTerminal,
  LIMITS,
  waveOf,
  type WaveSpec,
} from "./campaign_model.ts";
import { type Day, type MaintenanceWindow, windowProblem } from "./maintenance_window.ts";
import { CampaignStore, CHUNK } from "./campaign_store.ts";

/** Campaigns kept at most (delete finished ones to make room). */
export const MAX_CAMPAIGNS = 1000;

/** Chunks of device records one device-list request reads at most. */
const MAX_SCAN_CHUNKS = 400;

/** No campaign has this id. */
export class CampaignNotFoundError extends TwinmillError {
  override name = "CampaignNotFoundError";
  constructor(id: string) {
    super("campaign_not_found", 404, `Campaign "${id}" not found`);
  }
}

/** The campaign's state does not allow the action. */
export class CampaignConflictError extends TwinmillError {
  override name = "CampaignConflictError";
  constructor(message: string) {
    super("campaign_state_conflict", 409, message);
  }
}

/** The store holds {@linkcode MAX_CAMPAIGNS} campaigns. */
export class TooManyCampaignsError extends TwinmillError {
  override name = "TooManyCampaignsError";
  constructor() {
    super(
      "too_many_campaigns",
      409,
      `There are ${MAX_CAMPAIGNS} campaigns, the most kept: delete finished ones first`,
    );
  }
}

/** The campaign names a firmware image that does not exist. */
export class CampaignFirmwareNotFoundError extends TwinmillError {
  override name = "CampaignFirmwareNotFoundError";
  constructor(id: string) {
    super("firmware_not_found", 404, `Firmware "${id}" not found: upload it first`);
  }
}

/** A campaign as created through the API. */
export interface CampaignInput {
  name: string;
  /** Firmware image id. */
  firmware: string;
  selector: Record<string, string | number | boolean>;
  waves: WaveSpec[];
  successThreshold: number;
  errorThreshold: number;
  maintenanceWindow?: { start: string; end: string; days?: Day[]; tz?: string };
  timeoutMinutes?: number;
  /** RFC 3339: not before. */
  startAt?: string;
}

/** What the service needs of the firmware store (`FirmwareService` fits). */
export interface FirmwareSource {
  get(id: string): Promise<FirmwareRef & { id: string } | null>;
}

/** Options of {@linkcode CampaignService}. */
export interface CampaignServiceOptions {
  store: CampaignStore;
  firmware: FirmwareSource;
  transport: Transport;
  clock: Clock;
  logger: Logger;
  /** Tell the local driver about a new or changed campaign. */
  poke?(id: string): void;
}

/** A device of a campaign, with its wave (1-based). */
export interface CampaignDevice extends DeviceRecord {
  wave: number;
}

/** Campaign operations of the API. */
export class CampaignService {
  constructor(readonly o: CampaignServiceOptions) {}

  /** Check, look up the firmware, store as `scheduled`. */
  async create(input: CampaignInput): Promise<Campaign> {
    const spec = await this.#spec(input);
    if ((await this.o.store.list()).length >= MAX_CAMPAIGNS) throw new TooManyCampaignsError();
    const now = this.o.clock.now();
    const id = `c-${now.toString(36)}-${randomBytes(4).toString("hex")}`;
    const c = createCampaign(id, spec, now);
    if (!(await this.o.store.write(c, null))) {
      throw new Error(`Cannot create campaign "${id}": the id is taken`);
    }
    this.o.logger.info("campaign created", { campaign: id, name: spec.name });
    this.#announce(c, { event: "state", state: c.state, reason: c.reason, wave: null });
    return c;
  }

  async #spec(i: CampaignInput): Promise<CampaignSpec> {
    const bad = (m: string) => new BadRequestError(m, "campaign_invalid");
    if (i.waves.length === 0 || i.waves.length > LIMITS.maxWaves) {
      throw bad(`waves: give 1-${LIMITS.maxWaves} waves`);
    }
    if (Object.keys(i.selector).length === 0) {
      throw bad("selector: name at least one attribute (a campaign never targets every twin)");
    }
    for (const k of Object.keys(i.selector)) {
      const problem = attributeNameProblem(k);
      if (problem) throw bad(`selector: ${problem}`);
    }
    let window: MaintenanceWindow | undefined;
    if (i.maintenanceWindow) {
      window = { ...i.maintenanceWindow, tz: i.maintenanceWindow.tz ?? "UTC" };
      const problem = windowProblem(window);
      if (problem) throw bad(`maintenanceWindow.${problem}`);
    }
    let startAt: number | undefined;
    if (i.startAt !== undefined) {
      startAt = Date.parse(i.startAt);
      if (Number.isNaN(startAt)) throw bad("startAt: not an RFC 3339 time");
    }
    const fw = await this.o.firmware.get(i.firmware);
    if (!fw) throw new CampaignFirmwareNotFoundError(i.firmware);
    const firmware: FirmwareRef = {
      id: fw.id,
      version: fw.version,
      size: fw.size,
      sha256: fw.sha256,
    };
    if (fw.signature) firmware.signature = fw.signature;
    const spec: CampaignSpec = {
      name: i.name,
      firmware,
      selector: i.selector,
      waves: i.waves,
      successThreshold: i.successThreshold,
      errorThreshold: i.errorThreshold,
    };
    if (window) spec.maintenanceWindow = window;
    if (i.timeoutMinutes !== undefined) spec.timeoutMinutes = i.timeoutMinutes;
    if (startAt !== undefined) spec.startAt = startAt;
    return spec;
  }

  /** The campaign; throws `campaign_not_found`. */
  async get(id: string): Promise<Campaign> {
    const d = await this.o.store.get(id);
    if (!d) throw new CampaignNotFoundError(id);
    return d.value;
  }

  /** Campaigns in creation order, a page at a time (`cursor`: the last id of the previous page). */
  async list(limit: number, cursor?: string): Promise<{ items: Campaign[]; next?: string }> {
    const all = (await this.o.store.list()).map((d) => d.value)
      .filter((c) => cursor === undefined || c.id > cursor);
    const items = all.slice(0, limit);
    return all.length > limit ? { items, next: items[items.length - 1].id } : { items };
  }

  /**
   * Devices of a campaign in target order, optionally only those in `state`. A page ends after
   * `limit` matches or {@linkcode MAX_SCAN_CHUNKS} chunks read; `next` continues it.
   */
  async devices(
    id: string,
    opts: { state?: DeviceState; cursor?: number; limit: number },
  ): Promise<{ items: CampaignDevice[]; next?: string }> {
    const c = await this.get(id);
    const items: CampaignDevice[] = [];
    let i = opts.cursor ?? 0;
    const chunks = CampaignStore.chunkCount(c.total);
    for (let scanned = 0; i < c.total && scanned < MAX_SCAN_CHUNKS; scanned++) {
      const n = Math.floor(i / CHUNK);
      if (n >= chunks) break;
      const chunk = await this.o.store.chunk(c, n);
      if (!chunk) break;
      for (; i < Math.min(c.total, (n + 1) * CHUNK); i++) {
        const d = chunk.value.devices[i - n * CHUNK];
        if (!d || (opts.state && d.state !== opts.state)) continue;
        items.push({ ...d, wave: waveOf(c, i) + 1 });
        if (items.length === opts.limit) {
          i++;
          return i < c.total ? { items, next: String(i) } : { items };
        }
      }
    }
    return i < c.total ? { items, next: String(i) } : { items };
  }

  /** Pause (running, waiting for its window, or scheduled). */
  pause(id: string): Promise<Campaign> {
    return this.#change(id, pause);
  }

  /** Resume a paused campaign. */
  resume(id: string): Promise<Campaign> {
    return this.#change(id, resume);
  }

  /** Cancel: offers not yet acted on are withdrawn; updates under way finish. */
  cancel(id: string): Promise<Campaign> {
    return this.#change(id, cancel);
  }

  /** Delete a finished campaign and its device records. */
  async delete(id: string): Promise<void> {
    const c = await this.get(id);
    if (!isTerminal(c.state) || c.cleanup) {
      throw new CampaignConflictError(
        `Campaign "${id}" is ${c.state}${c.cleanup ? " (withdrawing offers)" : ""}; ` +
          "only a completed, cancelled or failed campaign can be deleted",
      );
    }
    await this.o.store.delete(c);
    this.o.logger.info("campaign deleted", { campaign: id });
  }

  async #change(id: string, fn: (c: Campaign, now: number) => Campaign): Promise<Campaign> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const d = await this.o.store.get(id);
      if (!d) throw new CampaignNotFoundError(id);
      const now = this.o.clock.now();
      let next: Campaign;
      try {
        next = fn(d.value, now);
      } catch (err) {
        if (err instanceof CampaignStateError) throw new CampaignConflictError(err.message);
        throw err;
      }
      next = { ...next, revision: d.value.revision + 1 };
      if (await this.o.store.write(next, d.version)) {
        this.o.logger.info("campaign state", {
          campaign: id,
          state: next.state,
          reason: next.reason,
        });
        this.#announce(next, {
          event: "state",
          state: next.state,
          reason: next.reason,
          wave: next.wave >= 0 ? next.wave + 1 : null,
        });
        return next;
      }
    }
    throw new CampaignConflictError(`Campaign "${id}" keeps changing; try again`);
  }

  #announce(c: Campaign, e: Parameters<typeof eventOf>[1]): void {
    this.o.transport.publish(subjects.event("campaign", c.id), eventOf(c, e, this.o.clock.now()));
    this.o.poke?.(c.id);
  }
}
