/**
 * The campaign model: states, limits, documents, observations, actions and events shared by
 * the pure engine ({@linkcode ./campaigns.ts}, {@linkcode ./campaign_step.ts}), its driver and
 * the routes.
 * @module
 */
import type { MaintenanceWindow } from "./maintenance_window.ts";

/** States of a campaign. */
export const CAMPAIGN_STATES = [
  "scheduled",
  "running",
  "waiting_window",
  "paused",
  "completed",
  "cancelled",
  "failed",
] as const;
/** A campaign state. */
export type CampaignState = typeof CAMPAIGN_STATES[number];

/** States of one device in a campaign. */
export const DEVICE_STATES = [
  "pending",
  "sent",
  "downloading",
  "installing",
  "done",
  "failed",
  "cancelled",
] as const;
/** A device's state in a campaign. */
export type DeviceState = typeof DEVICE_STATES[number];

/** Bounds of the campaign engine. */
export const LIMITS = {
  /** Twins one campaign may target. */
  maxTargets: 100_000,
  /** Waves per campaign. */
  maxWaves: 100,
  /** History entries kept per device (the newest). */
  history: 16,
  /** Offers (and withdrawals) per step. */
  offersPerStep: 200,
  /** Device events per step (the rest are counted in the log, not sent). */
  deviceEventsPerStep: 100,
  /** Characters kept of a reported version or error. */
  text: 200,
};

/** The image a campaign offers (captured from the firmware store when it is created). */
export interface FirmwareRef {
  id: string;
  version: string;
  size: number;
  sha256: string;
  signature?: string;
}

/** A wave: a number of twins, or a percentage of all targets. The last takes the rest. */
export type WaveSpec = { count: number } | { percent: number };

/** What the user asked for. */
export interface CampaignSpec {
  name: string;
  firmware: FirmwareRef;
  /** Attribute values the targets must have (compared as strings). */
  selector: Record<string, string | number | boolean>;
  waves: WaveSpec[];
  /** Fraction (0–1] of a wave that must be `done` before the next wave starts. */
  successThreshold: number;
  /** Fraction (0–1] of a wave that `failed` which pauses the campaign. */
  errorThreshold: number;
  maintenanceWindow?: MaintenanceWindow;
  /** A device that is not done this long after its offer has failed (timeout). */
  timeoutMinutes?: number;
  /** Not before (ms since the epoch). */
  startAt?: number;
}

/** Devices of a wave by state. */
export type Counts = Record<DeviceState, number>;

/** One wave as resolved at start: targets `[first, first + size)` in id order. */
export interface Wave {
  /** 1-based. */
  number: number;
  first: number;
  size: number;
  /** First offer of the wave. */
  startedAt: number | null;
  /** The next wave was released (or, for the last wave, every device finished). */
  finishedAt: number | null;
  /** Resumed after an automatic pause: its failures no longer pause the campaign. */
  override: boolean;
  counts: Counts;
}

/** Why a campaign is paused. */
export type PausedBy = "user" | "error_threshold" | "success_threshold";

/** A campaign document (without its per-device records). */
export interface Campaign {
  id: string;
  /** Increases by one with every stored change. */
  revision: number;
  spec: CampaignSpec;
  state: CampaignState;
  /** Why it is in its state, for people. */
  reason: string;
  pausedBy: PausedBy | null;
  /** Index of the current wave; -1 before the targets are resolved. */
  wave: number;
  waves: Wave[];
  /** Targets resolved at start. */
  total: number;
  /** Cancelled, and offers not yet started remain to be withdrawn. */
  cleanup: boolean;
  /**
   * Names the device records written when the targets were resolved (chosen per attempt, so a
   * second driver that loses the race never overwrites the winner's records).
   */
  chunkSet: string;
  createdAt: number;
  updatedAt: number;
  startedAt: number | null;
  finishedAt: number | null;
}

/** One entry of a device's history. */
export interface HistoryEntry {
  ts: number;
  state: DeviceState;
  progress: number | null;
  version: string | null;
  error?: string;
}

/** A device's record in a campaign. */
export interface DeviceRecord {
  id: string;
  state: DeviceState;
  progress: number | null;
  /** The version the device last reported for this campaign. */
  version: string | null;
  offeredAt: number | null;
  updatedAt: number;
  error?: string;
  /** The newest {@linkcode LIMITS.history} changes. */
  history: HistoryEntry[];
}

/** What the driver saw since the last step, by target index. */
export type Observation =
  | { kind: "offered"; device: number; ts: number }
  | { kind: "offer_failed"; device: number; error: string; permanent: boolean }
  | { kind: "withdrawn"; device: number; ts: number }
  | {
    kind: "report";
    device: number;
    /** The twin's `reported.firmware`. */
    firmware: unknown;
    /** When `reported.firmware` last changed (twin metadata). */
    changedAt: number | null;
  }
  | { kind: "gone"; device: number };

/** What the driver must do after storing the step's result. */
export type Action =
  | { kind: "offer"; device: number; twin: string }
  | { kind: "withdraw"; device: number; twin: string };

/** An event to publish on the campaign's stream subject. */
export type CampaignEvent =
  | { event: "state"; state: CampaignState; reason: string; wave: number | null }
  | { event: "wave"; wave: number; phase: "started" | "finished"; counts: Counts }
  | {
    event: "device";
    device: string;
    wave: number;
    state: DeviceState;
    progress: number | null;
    version: string | null;
    error?: string;
  };

/** The result of a step. */
export interface StepResult {
  campaign: Campaign;
  /** Changed device records by target index. */
  updates: Map<number, DeviceRecord>;
  actions: Action[];
  events: CampaignEvent[];
  /** Device events left out (over {@linkcode LIMITS.deviceEventsPerStep}). */
  droppedEvents: number;
}

/** A user action that the campaign's state does not allow. */
export class CampaignStateError extends Error {
  override name = "CampaignStateError";
  constructor(readonly id: string, readonly state: CampaignState, action: string) {
    super(`Campaign "${id}" is ${state}; it cannot be ${action}`);
  }
}

/** Campaign states that never change again. */
export const isTerminal = (s: CampaignState) =>
  s === "completed" || s === "cancelled" || s === "failed";

/** Devices offered and not finished: their twins are read every tick. */
export const isInFlight = (s: DeviceState) =>
  s === "sent" || s === "downloading" || s === "installing";

/** Every device state at zero. */
export const zeroCounts = (): Counts => ({
  pending: 0,
  sent: 0,
  downloading: 0,
  installing: 0,
  done: 0,
  failed: 0,
  cancelled: 0,
});

/** The event that announces `c`'s state. */
export function stateEvent(c: Campaign): CampaignEvent {
  return {
    event: "state",
    state: c.state,
    reason: c.reason,
    wave: c.wave >= 0 ? c.wave + 1 : null,
  };
}

/** The wave (index) a target index belongs to. */
export function waveOf(c: Campaign, device: number): number {
  for (let i = c.waves.length - 1; i >= 0; i--) if (device >= c.waves[i].first) return i;
  return 0;
}
