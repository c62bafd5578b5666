/**
 * Rule points that survive a `kill -9`: a device message's alarm and rollup points are kept in
 * its twin's record (`TwinRecord.unwritten`) while its log entry is not retired, so that the
 * replay of the entry after a restart — which finds the twin already past it and only writes the
 * message's own telemetry point again — writes them again too. An entry is retired only once
 * every point it made is written, so a retired entry's points are pruned at the twin's next
 * device message. The same sequence gives the same sub-millisecond time: a point written before
 * the crash is rewritten, not doubled.
 * @module
 */
import type { TwinEffect, TwinRecord, UnwrittenPoints } from "../../actors/twin.ts";

/** Most messages whose points a record keeps (oldest dropped first): bounds the snapshot. */
export const MAX_UNWRITTEN = 64;

type Point = Extract<TwinEffect, { type: "point" }>;

/**
 * `rec` after device message `seq` made `effects`: its kept points without those of retired
 * entries, plus the message's rule points (every point but its own telemetry point, which the
 * replay makes again from the message). Returns `rec` itself when nothing changes.
 */
export function keepUnwritten(
  rec: TwinRecord,
  before: UnwrittenPoints[] | undefined,
  seq: number,
  effects: readonly TwinEffect[],
  unretired: (seq: number) => boolean,
): TwinRecord {
  const points = effects.filter((e): e is Point =>
    e.type === "point" && e.measurement !== undefined
  );
  const kept = (before ?? []).filter((u) => unretired(u.seq));
  if (points.length > 0) kept.push({ seq, points });
  if (kept.length > MAX_UNWRITTEN) kept.splice(0, kept.length - MAX_UNWRITTEN);
  if (kept.length === 0 && rec.unwritten === undefined) return rec;
  if (kept.length === 0) {
    const { unwritten: _, ...rest } = rec;
    return rest;
  }
  return { ...rec, unwritten: kept };
}

/** The rule points device message `seq` made, as `rec` keeps them (none when not kept). */
export function unwrittenOf(rec: TwinRecord, seq: number): Point[] {
  return rec.unwritten?.find((u) => u.seq === seq)?.points ?? [];
}
