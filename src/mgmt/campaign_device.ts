/**
 * One device in a campaign: what its `reported.firmware` says about the campaign, and its
 * record moved to a new state with a history entry. Pure.
 * @module
 */
import {
  type Campaign,
  type DeviceRecord,
  type DeviceState,
  type HistoryEntry,
  LIMITS,
} from "./campaign_model.ts";

/** What a device may report in `reported.firmware.state`. */
const REPORTED_STATES = ["downloading", "installing", "done", "failed"] as const;

/** How far a report's timestamp may be before the offer and still count (node clock skew). */
const SKEW_MS = 2_000;

/** `s` cut to {@linkcode LIMITS.text} characters. */
export const clip = (s: string) => s.slice(0, LIMITS.text);

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
export function moved(
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
