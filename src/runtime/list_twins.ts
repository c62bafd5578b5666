/**
 * A filtered page of twins from a snapshot store, in id order, with a bounded scan.
 * @module
 */
import type { TwinState } from "../../actors/twin.ts";
import type { SnapshotStore } from "../persistence/port.ts";

const PAGE = 500;
/** Most snapshots one request scans; past it the page is returned short with a cursor. */
export const MAX_SCAN = 100_000;

/**
 * Twins with id > `after` whose attributes match `filter` (string comparison), at most
 * `limit`. `fresh` may substitute a newer in-memory state for a stored one.
 */
export async function listTwins(
  store: SnapshotStore,
  after: string | undefined,
  limit: number,
  filter: Record<string, string>,
  fresh: (s: TwinState) => TwinState = (s) => s,
): Promise<{ items: TwinState[]; next?: string }> {
  const items: TwinState[] = [];
  const keys = Object.entries(filter);
  let cursor = after;
  for (let scanned = 0; scanned < MAX_SCAN;) {
    const page = await store.list(cursor, PAGE);
    for (const r of page) {
      scanned++;
      cursor = r.state.id;
      const s = fresh(r.state);
      if (s.version > 0 && keys.every(([k, v]) => String(s.attributes[k]) === v)) {
        items.push(s);
        if (items.length === limit) return { items, next: cursor };
      }
    }
    if (page.length < PAGE) return { items };
  }
  return { items, next: cursor };
}
