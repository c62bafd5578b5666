/**
 * What the twin host refuses and how it contains a twin that cannot be stored: the quarantine
 * record, the refusals of device messages, and the rules of the persistence loop (when a
 * record is itself at fault, how long to back off from a failing store).
 * @module
 */
import type { TwinRecord } from "../../actors/twin.ts";
import { TwinmillError } from "../errors.ts";

/** A twin quarantined because its snapshot could not be stored. */
export interface Quarantine {
  /** When it began and ends (ms). */
  since: number;
  until: number;
  /** Why the snapshot could not be stored. */
  reason: string;
  /** Version of the state that could not be stored (dropped). */
  droppedVersion: number;
  /** Device messages dropped with it (applied since its last stored snapshot). */
  droppedMessages: number;
}

/** A quarantine as the host keeps it: `reset` while the resident state is the dropped one. */
export type QuarantineRecord = Quarantine & { reset: boolean };

/** A device message the twin refused after the broker accepted it (diagnostics). */
export interface TwinRefusal {
  at: number;
  reason: "twin_too_large" | "twin_quarantined";
  topic: string;
}

/** Why the host refused a change the twin itself would take. */
export type HostRefusal =
  | { code: "twin_too_large"; size: number; limit: number }
  | { code: "twin_quarantined"; reason: string; until: number };

/** Refusals kept per twin, and twins with refusals kept per node (diagnostics). */
export const KEEP_REFUSALS = 20;
export const MAX_REFUSING_TWINS = 1_000;
/** Quarantine records kept per node (the oldest is forgotten first). */
export const MAX_QUARANTINES = 10_000;
/** Rounds in a row a twin may fail to be stored while others are, before it is quarantined. */
export const MAX_SAVE_ATTEMPTS = 5;

/** Delay before retrying a store that failed `failures` commits in a row: 200 ms doubling to 5 s. */
export function retryDelay(failures: number): number {
  return Math.min(5_000, 200 * 2 ** Math.max(0, failures - 1));
}

/**
 * True when `err` saving `rec` is the record's own fault: it cannot be serialized, or the
 * store says it is too large (retrying cannot help).
 */
export function unstorable(rec: TwinRecord, err: unknown): boolean {
  if (err instanceof RangeError) return true; // stack or string length overflow
  if (err instanceof TwinmillError && err.code === "snapshot_too_large") return true;
  try {
    JSON.stringify(rec);
    return false;
  } catch {
    return true;
  }
}

/** A quarantine as diagnostics show it (`active` while it lasts), or null. */
export function quarantineView(
  q: QuarantineRecord | undefined,
  now: number,
): (Quarantine & { active: boolean }) | null {
  if (!q) return null;
  const { reset: _, ...view } = q;
  return { ...view, active: now < q.until };
}

/** Set `key` in `map`, forgetting the oldest key first when it holds `max` already. */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  if (map.size >= max && !map.has(key)) map.delete(map.keys().next().value!);
  map.set(key, value);
}

/** Append `item` to `key`'s list in `map`: the last `keep` per key, `maxKeys` keys at most. */
export function pushBounded<K, V>(
  map: Map<K, V[]>,
  key: K,
  item: V,
  keep: number,
  maxKeys: number,
): void {
  let list = map.get(key);
  if (!list) setBounded(map, key, list = [], maxKeys);
  list.push(item);
  if (list.length > keep) list.shift();
}
