/**
 * Firmware campaigns (FOTA, hawkBit-style) as pure functions: no I/O, time passed in.
 *
 * A campaign offers one firmware image to the twins matching a selector, in waves. Offering
 * is a merge patch of the twin's desired state with `{firmware: {version, url, sha256, size,
 * signature, campaign}}`; the device answers through `reported.firmware` `{version, state:
 * downloading|installing|done|failed, progress}`. The next wave is released once the fraction
 * of the current wave that is `done` reaches the success threshold; the campaign pauses itself
 * when the fraction that `failed` reaches the error threshold.
 *
 * ```
 * scheduled ──targets resolved──► running ⇄ waiting_window (offers wait for the window)
 *     │                             │  ▲
 *     │                     pause / │  │ resume
 *     │              error threshold▼  │
 *     ├───────────── pause ───────► paused
 *     └── no targets ──► failed     running ──every device done or failed──► completed
 * any state but completed/failed ──cancel──► cancelled (unsent offers are withdrawn)
 * ```
 *
 * Per device: `pending` (its wave has not reached it) → `sent` (offered, no report yet) →
 * `downloading` → `installing` → `done` | `failed`; `cancelled` when the campaign is cancelled
 * before the device started.
 *
 * The driver (`campaign_driver.ts`) calls {@linkcode begin} once, then {@linkcode step} on
 * every tick with what it observed (offers made, twins read), persists the result, and only
 * then carries out the returned actions: a crash between the two repeats an offer, which is
 * idempotent, and never loses one.
 * @module
 */
import {
  describeWindow,
  isOpen,
  type MaintenanceWindow,
  nextOpening,
} from "./maintenance_window.ts";

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

/** What a device may report in `reported.firmware.state`. */
export const REPORTED_STATES = ["downloading", "installing", "done", "failed"] as const;

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

/** How far a report's timestamp may be before the offer and still count (node clock skew). */
export const SKEW_MS = 2_000;

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

/** Device states that never change again. */
export const isFinal = (s: DeviceState) => s === "done" || s === "failed" || s === "cancelled";

/** Devices offered and not finished: their twins are read every tick. */
export const isInFlight = (s: DeviceState) =>
  s === "sent" || s === "downloading" || s === "installing";

const zero = (): Counts => ({
  pending: 0,
  sent: 0,
  downloading: 0,
  installing: 0,
  done: 0,
  failed: 0,
  cancelled: 0,
});

/** A new campaign, `scheduled`. */
export function createCampaign(id: string, spec: CampaignSpec, now: number): Campaign {
  return {
    id,
    revision: 1,
    spec,
    state: "scheduled",
    reason: spec.startAt && spec.startAt > now
      ? `starts at ${new Date(spec.startAt).toISOString()}`
      : "waiting to start",
    pausedBy: null,
    wave: -1,
    waves: [],
    total: 0,
    cleanup: false,
    chunkSet: "",
    createdAt: now,
    updatedAt: now,
    startedAt: null,
    finishedAt: null,
  };
}

/**
 * Wave sizes for `total` targets: `count` (at most what is left), `percent` of the total
 * (rounded up, at most what is left); the last wave takes the rest.
 */
export function waveSizes(total: number, specs: WaveSpec[]): number[] {
  let left = total;
  return specs.map((s, i) => {
    const want = i === specs.length - 1
      ? left
      : "count" in s
      ? s.count
      : Math.ceil(total * s.percent / 100);
    const n = Math.min(left, want);
    left -= n;
    return n;
  });
}

/**
 * Resolve the targets (twin ids in id order, at most {@linkcode LIMITS.maxTargets} + 1 so
 * "too many" can be told): the waves are cut and the campaign runs, or fails when there is
 * nothing (or too much) to update. The device records are new, stored under `chunkSet`.
 */
export function begin(
  c: Campaign,
  ids: string[],
  now: number,
  chunkSet = "0",
): { campaign: Campaign; devices: DeviceRecord[]; events: CampaignEvent[] } {
  const fail = (reason: string) => {
    const campaign: Campaign = { ...c, state: "failed", reason, finishedAt: now, updatedAt: now };
    return { campaign, devices: [], events: [stateEvent(campaign)] };
  };
  if (c.state !== "scheduled") return { campaign: c, devices: [], events: [] };
  if (ids.length === 0) return fail(`no twin matches the selector ${sel(c.spec.selector)}`);
  if (ids.length > LIMITS.maxTargets) {
    return fail(`the selector matches more than ${LIMITS.maxTargets} twins`);
  }
  let first = 0;
  const waves: Wave[] = waveSizes(ids.length, c.spec.waves).map((size, i) => {
    const w: Wave = {
      number: i + 1,
      first,
      size,
      startedAt: null,
      finishedAt: null,
      override: false,
      counts: { ...zero(), pending: size },
    };
    first += size;
    return w;
  });
  const devices: DeviceRecord[] = ids.map((id) => ({
    id,
    state: "pending",
    progress: null,
    version: null,
    offeredAt: null,
    updatedAt: now,
    history: [],
  }));
  const campaign: Campaign = {
    ...c,
    state: "running",
    reason: `${ids.length} twins in ${waves.length} waves`,
    wave: 0,
    waves,
    total: ids.length,
    chunkSet,
    startedAt: now,
    updatedAt: now,
  };
  return { campaign, devices, events: [stateEvent(campaign)] };
}

const sel = (s: Record<string, unknown>) =>
  Object.entries(s).map(([k, v]) => `${k}=${v}`).join(", ");

function stateEvent(c: Campaign): CampaignEvent {
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

const clip = (s: string) => s.slice(0, LIMITS.text);

/** What a `reported.firmware` says about this campaign, or null when it says nothing. */
export function interpret(
  c: Campaign,
  d: DeviceRecord,
  fw: unknown,
  changedAt: number | null,
): { state: DeviceState; progress: number | null; version: string | null; error?: string } | null {
  if (fw === null || typeof fw !== "object" || Array.isArray(fw)) return null;
  const f = fw as Record<string, unknown>;
  const state = f.state as DeviceState;
  if (!(REPORTED_STATES as readonly unknown[]).includes(state)) return null;
  const target = c.spec.firmware.version;
  const version = typeof f.version === "string" ? clip(f.version) : null;
  // a report about another campaign or another image says nothing about this one
  if (typeof f.campaign === "string" && f.campaign !== c.id) return null;
  if (version !== null && version !== target) return null;
  if (state === "done" && version !== target) return null;
  // a report older than the offer is left over from an earlier update; `done` with the target
  // version still counts (the device runs it already)
  const fresh = f.campaign === c.id ||
    (changedAt !== null && d.offeredAt !== null && changedAt >= d.offeredAt - SKEW_MS);
  if (!fresh && state !== "done") return null;
  const p = typeof f.progress === "number" && Number.isFinite(f.progress)
    ? Math.min(100, Math.max(0, Math.round(f.progress)))
    : null;
  const out: {
    state: DeviceState;
    progress: number | null;
    version: string | null;
    error?: string;
  } = {
    state,
    progress: state === "done" ? 100 : p,
    version,
  };
  if (state === "failed") {
    out.error = typeof f.error === "string" ? clip(f.error) : "the device reported failed";
  }
  return out;
}

/** `d` moved to `next` at `now`, with a history entry. */
function moved(
  d: DeviceRecord,
  next: { state: DeviceState; progress?: number | null; version?: string | null; error?: string },
  now: number,
  offeredAt?: number,
): DeviceRecord {
  const rec: DeviceRecord = {
    ...d,
    state: next.state,
    progress: next.progress !== undefined ? next.progress : d.progress,
    version: next.version !== undefined ? next.version : d.version,
    offeredAt: offeredAt ?? d.offeredAt,
    updatedAt: now,
  };
  if (next.error !== undefined) rec.error = next.error;
  const entry: HistoryEntry = {
    ts: now,
    state: rec.state,
    progress: rec.progress,
    version: rec.version,
  };
  if (next.error !== undefined) entry.error = next.error;
  rec.history = [...d.history, entry].slice(-LIMITS.history);
  return rec;
}

/**
 * One step: apply what was observed, time out overdue devices, recount the waves, then move
 * the campaign on (release the next wave, pause, complete, wait for the window, offer,
 * withdraw). Pure: `c` and `devices` are not changed.
 */
export function step(
  c: Campaign,
  devices: readonly DeviceRecord[],
  obs: readonly Observation[],
  now: number,
): StepResult {
  const updates = new Map<number, DeviceRecord>();
  const events: CampaignEvent[] = [];
  const actions: Action[] = [];
  let dropped = 0;
  let deviceEvents = 0;
  const cur = (i: number) => updates.get(i) ?? devices[i];
  const set = (i: number, rec: DeviceRecord) => {
    updates.set(i, rec);
    if (deviceEvents++ >= LIMITS.deviceEventsPerStep) {
      dropped++;
      return;
    }
    const e: CampaignEvent = {
      event: "device",
      device: rec.id,
      wave: waveOf(c, i) + 1,
      state: rec.state,
      progress: rec.progress,
      version: rec.version,
    };
    if (rec.state === "failed" && rec.error) e.error = rec.error;
    events.push(e);
  };

  // 1. what the driver saw
  for (const o of obs) {
    const d = cur(o.device);
    if (!d) continue;
    switch (o.kind) {
      case "offered":
        // recorded even when cancelled meanwhile: the offer is out and must be withdrawn
        if (d.state === "pending") {
          set(o.device, moved(d, { state: "sent", progress: null }, o.ts, o.ts));
        }
        break;
      case "offer_failed":
        if (d.state === "pending" && o.permanent) {
          set(o.device, moved(d, { state: "failed", error: clip(o.error) }, now));
        }
        break;
      case "withdrawn":
        if (d.state === "sent") set(o.device, moved(d, { state: "cancelled" }, o.ts));
        break;
      case "gone":
        if (d.state === "pending" || isInFlight(d.state)) {
          set(o.device, moved(d, { state: "failed", error: "the twin no longer exists" }, now));
        }
        break;
      case "report": {
        if (!isInFlight(d.state)) break;
        const r = interpret(c, d, o.firmware, o.changedAt);
        if (!r) break;
        if (r.state === d.state && r.progress === d.progress) break;
        set(o.device, moved(d, r, now));
        break;
      }
    }
  }

  // 2. timeouts
  const timeout = c.spec.timeoutMinutes;
  if (timeout !== undefined && !isTerminal(c.state)) {
    const limit = timeout * 60_000;
    for (let i = 0; i < devices.length; i++) {
      const d = cur(i);
      if (isInFlight(d.state) && d.offeredAt !== null && now - d.offeredAt >= limit) {
        set(i, moved(d, { state: "failed", error: `timed out after ${timeout} minutes` }, now));
      }
    }
  }

  // 3. recount
  let next: Campaign = {
    ...c,
    waves: c.waves.map((w) => {
      const counts = zero();
      for (let i = w.first; i < w.first + w.size; i++) counts[cur(i).state]++;
      return { ...w, counts };
    }),
  };

  // 4. move on
  // a state event when the state changes (a new reason alone is not news: waves have events)
  const to = (state: CampaignState, reason: string, patch: Partial<Campaign> = {}) => {
    if (next.state === state && next.reason === reason) return;
    const changed = next.state !== state;
    next = { ...next, ...patch, state, reason };
    if (changed) events.push(stateEvent(next));
  };
  const wave = (i: number, w: Partial<Wave>) => {
    next = { ...next, waves: next.waves.map((x, j) => j === i ? { ...x, ...w } : x) };
  };

  if (next.state === "cancelled") {
    // not started: withdraw (after a last look at the twin, by the driver) or drop
    let budget = LIMITS.offersPerStep;
    let left = 0;
    for (let i = 0; i < devices.length; i++) {
      const d = cur(i);
      if (d.state === "pending") set(i, moved(d, { state: "cancelled" }, now));
      else if (d.state === "sent") {
        left++;
        if (budget-- > 0) actions.push({ kind: "withdraw", device: i, twin: d.id });
      }
    }
    if (left === 0 && next.cleanup) next = { ...next, cleanup: false };
    if (updates.size > 0) {
      next = {
        ...next,
        waves: next.waves.map((w) => {
          const counts = zero();
          for (let i = w.first; i < w.first + w.size; i++) counts[cur(i).state]++;
          return { ...w, counts };
        }),
      };
    }
  } else if (next.state === "running" || next.state === "waiting_window") {
    advance();
  }

  function advance() {
    const s = next.spec;
    // error threshold: any started wave (stragglers of earlier waves count too)
    for (const w of next.waves) {
      if (w.startedAt === null || w.override || w.size === 0) continue;
      if (w.counts.failed / w.size >= s.errorThreshold) {
        to(
          "paused",
          `error threshold ${s.errorThreshold} reached in wave ${w.number} ` +
            `(${w.counts.failed} of ${w.size} failed)`,
          { pausedBy: "error_threshold" },
        );
        return;
      }
    }
    for (;;) {
      const i = next.wave;
      const w = next.waves[i];
      const k = w.counts;
      const last = i === next.waves.length - 1;
      const inFlight = k.sent + k.downloading + k.installing;
      if (k.pending === 0) {
        if (!last) {
          const met = w.size === 0 || k.done / w.size >= s.successThreshold;
          if (met || (w.override && inFlight === 0)) {
            wave(i, { finishedAt: now, startedAt: w.startedAt ?? now });
            events.push({ event: "wave", wave: w.number, phase: "finished", counts: k });
            next = { ...next, wave: i + 1 };
            continue;
          }
          if (inFlight === 0) {
            to(
              "paused",
              `wave ${w.number} ended with ${k.done} of ${w.size} done, below the success ` +
                `threshold ${s.successThreshold}`,
              { pausedBy: "success_threshold" },
            );
            return;
          }
          to("running", `wave ${w.number} of ${next.waves.length} in progress`);
          return;
        }
        // the last wave is out: done when every device of every wave has finished
        if (next.waves.every((x) => x.counts.pending + inFlightOf(x) === 0)) {
          const all = next.waves.reduce((a, x) => a + x.counts.done, 0);
          const failed = next.waves.reduce((a, x) => a + x.counts.failed, 0);
          if (w.finishedAt === null) {
            wave(i, { finishedAt: now, startedAt: w.startedAt ?? now });
            events.push({ event: "wave", wave: w.number, phase: "finished", counts: k });
          }
          to("completed", `${all} of ${next.total} done, ${failed} failed`, { finishedAt: now });
          return;
        }
        to("running", `wave ${w.number} of ${next.waves.length} in progress`);
        return;
      }
      // devices of this wave wait for their offer
      const mw = s.maintenanceWindow;
      if (mw && !isOpen(mw, now)) {
        const at = nextOpening(mw, now);
        to(
          "waiting_window",
          `maintenance window ${describeWindow(mw)} is closed` +
            (at !== null ? `; it opens at ${new Date(at).toISOString()}` : ""),
        );
        return;
      }
      to("running", `wave ${w.number} of ${next.waves.length} in progress`);
      if (w.startedAt === null) {
        wave(i, { startedAt: now });
        events.push({ event: "wave", wave: w.number, phase: "started", counts: k });
      }
      let budget = LIMITS.offersPerStep;
      for (let j = w.first; j < w.first + w.size && budget > 0; j++) {
        if (cur(j).state === "pending") {
          actions.push({ kind: "offer", device: j, twin: cur(j).id });
          budget--;
        }
      }
      return;
    }
  }

  return { campaign: next, updates, actions, events, droppedEvents: dropped };
}

const inFlightOf = (w: Wave) => w.counts.sent + w.counts.downloading + w.counts.installing;

/** Pause (by the user). */
export function pause(c: Campaign, now: number): Campaign {
  if (isTerminal(c.state) || c.state === "paused") {
    throw new CampaignStateError(c.id, c.state, "paused");
  }
  return { ...c, state: "paused", pausedBy: "user", reason: "paused by the user", updatedAt: now };
}

/**
 * Resume a paused campaign. After an automatic pause the failures of the waves started so far
 * are accepted: they no longer pause it, and the current wave releases the next once none of
 * its devices is still in progress (or the success threshold is met).
 */
export function resume(c: Campaign, now: number): Campaign {
  if (c.state !== "paused") throw new CampaignStateError(c.id, c.state, "resumed");
  const auto = c.pausedBy === "error_threshold" || c.pausedBy === "success_threshold";
  return {
    ...c,
    state: c.wave < 0 ? "scheduled" : "running",
    pausedBy: null,
    reason: auto ? "resumed by the user, accepting the failures so far" : "resumed by the user",
    waves: auto ? c.waves.map((w) => w.startedAt === null ? w : { ...w, override: true }) : c.waves,
    updatedAt: now,
  };
}

/**
 * Cancel. Offers not yet acted on are withdrawn (`desired.firmware` removed); devices already
 * downloading or installing keep their offer and finish on their own — interrupting a flash
 * half-way is worse than letting it complete.
 */
export function cancel(c: Campaign, now: number): Campaign {
  if (isTerminal(c.state)) throw new CampaignStateError(c.id, c.state, "cancelled");
  return {
    ...c,
    state: "cancelled",
    pausedBy: null,
    reason: "cancelled by the user",
    cleanup: c.wave >= 0,
    updatedAt: now,
    finishedAt: now,
  };
}

/** A campaign event for the stream. */
export function eventOf(c: Campaign, e: CampaignEvent, ts: number) {
  return { type: "campaign" as const, twin: c.id, version: c.revision, ts, data: e };
}

/** Every device of `c` by state, and the fraction finished (done or failed). */
export function progressOf(c: Campaign): Counts & { total: number; finished: number } {
  const all = zero();
  for (const w of c.waves) for (const s of DEVICE_STATES) all[s] += w.counts[s];
  const finished = c.total === 0 ? 0 : (all.done + all.failed + all.cancelled) / c.total;
  return { ...all, total: c.total, finished: Math.round(finished * 1000) / 1000 };
}
