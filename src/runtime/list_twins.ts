/**
 * Filtered pages of twins and of their alarms from a snapshot store, in id order, with a
 * bounded scan.
 * @module
 */
import type { TwinRecord, TwinState } from "../../actors/twin.ts";
import type { Alarm } from "../../actors/rules/alarm.ts";
import { alarmsOf } from "../../actors/twin_rules.ts";
import type { SnapshotStore } from "../persistence/port.ts";
import type { AlarmQuery } from "../rules/service.ts";
import { BadRequestError } from "../errors.ts";
import { isValidTwinId } from "../../actors/validate.ts";

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

/** Where a page of alarms ended: a twin, and how many of its alarms were returned. */
interface AlarmCursor {
  t: string;
  i: number;
}

function encodeCursor(c: AlarmCursor): string {
  return btoa(JSON.stringify(c)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function decodeCursor(s: string): AlarmCursor {
  try {
    const c = JSON.parse(atob(s.replaceAll("-", "+").replaceAll("_", "/")));
    if (
      typeof c?.t === "string" && isValidTwinId(c.t) && Number.isSafeInteger(c?.i) && c.i >= 0
    ) return c;
  } catch { /* fall through */ }
  throw new BadRequestError(
    `Invalid cursor "${s.slice(0, 40)}${s.length > 40 ? "…" : ""}": pass the "next" of the ` +
      "previous page",
    "bad_cursor",
  );
}

/**
 * A page of alarms (open and recently cleared) of the twins in `store`, in twin id order and
 * by raise time within a twin, filtered by state, twin and severity; `fresh` may substitute a
 * newer in-memory record for a stored one.
 */
export async function listAlarms(
  store: SnapshotStore,
  q: AlarmQuery,
  fresh: (r: TwinRecord) => TwinRecord = (r) => r,
): Promise<{ items: Alarm[]; next?: string }> {
  const items: Alarm[] = [];
  const from = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
  const ok = (a: Alarm) =>
    (q.state === undefined || a.state === q.state) &&
    (q.severity === undefined || a.severity === q.severity);
  /** Adds a twin's alarms past `skip`; returns the cursor if the page filled up. */
  const take = (r: TwinRecord, skip: number): string | undefined => {
    const rec = fresh(r);
    if (q.site !== undefined && rec.state.attributes.site !== q.site) return undefined;
    const all = alarmsOf(rec).sort((a, b) => a.raisedAt - b.raisedAt);
    for (let i = skip; i < all.length; i++) {
      if (!ok(all[i])) continue;
      items.push(all[i]);
      if (items.length === q.limit) {
        return i + 1 < all.length ? encodeCursor({ t: r.state.id, i: i + 1 }) : encodeCursor({
          t: r.state.id,
          i: all.length,
        });
      }
    }
    return undefined;
  };
  if (q.twin !== undefined) {
    if (from && from.t !== q.twin) return { items };
    const r = await store.load(q.twin);
    if (!r) return { items };
    const next = take(r, from?.i ?? 0);
    return next ? { items, next } : { items };
  }
  let cursor: string | undefined;
  if (from) {
    const r = await store.load(from.t);
    if (r) {
      const next = take(r, from.i);
      if (next) return { items, next };
    }
    cursor = from.t;
  }
  for (let scanned = 0; scanned < MAX_SCAN;) {
    const page = await store.list(cursor, PAGE);
    for (const r of page) {
      scanned++;
      cursor = r.state.id;
      const next = take(r, 0);
      if (next) return { items, next };
    }
    if (page.length < PAGE) return { items };
  }
  return { items, next: encodeCursor({ t: cursor!, i: Number.MAX_SAFE_INTEGER }) };
}

/** Every twin record in `store`, in id order, a page at a time (start-up and rare scans). */
export async function* storedRecords(store: SnapshotStore): AsyncIterable<TwinRecord> {
  if (store.all) return yield* store.all(); // a store that cannot seek reads its keys once
  let after: string | undefined;
  for (;;) {
    const page = await store.list(after, PAGE);
    if (page.length === 0) return;
    yield* page;
    after = page[page.length - 1].state.id;
  }
}
