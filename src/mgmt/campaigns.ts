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
 * This module holds the lifecycle (create, begin, pause, resume, cancel); the types live in
 * `campaign_model.ts`, the per-tick step in `campaign_step.ts`, a device's reports in
 * `campaign_device.ts`.
 *
 * The driver (`campaign_driver.ts`) calls {@linkcode begin} once, then `step` on
 * every tick with what it observed (offers made, twins read), persists the result, and only
 * then carries out the returned actions: a crash between the two repeats an offer, which is
 * idempotent, and never loses one.
 * @module
 */
import {
  type Campaign,
  type CampaignEvent,
  type CampaignSpec,
  CampaignStateError,
  type Counts,
  DEVICE_STATES,
  type DeviceRecord,
  isTerminal,
  LIMITS,
  stateEvent,
  type Wave,
  type WaveSpec,
  zeroCounts,
} from "./campaign_model.ts";

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
      counts: { ...zeroCounts(), pending: size },
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
  const all = zeroCounts();
  for (const w of c.waves) for (const s of DEVICE_STATES) all[s] += w.counts[s];
  const finished = c.total === 0 ? 0 : (all.done + all.failed + all.cancelled) / c.total;
  return { ...all, total: c.total, finished: Math.round(finished * 1000) / 1000 };
}
