/**
 * Maintenance windows of firmware campaigns: a daily time range (`22:00`–`04:00` may cross
 * midnight), optionally on some weekdays only, in an IANA time zone (default `UTC`). A window
 * that crosses midnight belongs to the day it starts on: `{start: "22:00", end: "04:00",
 * days: ["fri"]}` is open from Friday 22:00 to Saturday 04:00.
 *
 * Local times come from `Intl.DateTimeFormat`, so daylight-saving changes follow the zone's
 * rules (whether a window is open is read off the local wall clock; the "opens at" time shown
 * to people may be an hour off on the night of a DST change).
 * @module
 */

/** Weekday names, Sunday first (as `Date.getUTCDay`). */
export const DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"] as const;
/** A weekday name. */
export type Day = typeof DAYS[number];

/** When a campaign may send firmware offers. */
export interface MaintenanceWindow {
  /** `HH:MM`, 24-hour. */
  start: string;
  /** `HH:MM`; before `start` = the window ends on the next day. */
  end: string;
  /** Days the window starts on; absent = every day. */
  days?: Day[];
  /** IANA time zone, e.g. `UTC`, `Europe/Berlin`. */
  tz: string;
}

const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** Minutes after midnight of `HH:MM`, or null when it is not a valid time. */
function minutesOf(hhmm: string): number | null {
  const m = HHMM.exec(hhmm);
  return m ? Number(m[1]) * 60 + Number(m[2]) : null;
}

/** Why `w` is not a valid window, or null when it is. */
export function windowProblem(w: MaintenanceWindow): string | null {
  const s = minutesOf(w.start);
  const e = minutesOf(w.end);
  if (s === null) return `start: "${w.start}" is not a time HH:MM`;
  if (e === null) return `end: "${w.end}" is not a time HH:MM`;
  if (s === e) return "start and end must differ (a window of 24 hours needs no window)";
  if (w.days && w.days.length === 0) return "days: give at least one day, or leave it out";
  try {
    formatter(w.tz);
  } catch {
    return `tz: "${w.tz}" is not a known time zone`;
  }
  return null;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: tz,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      weekday: "short",
    });
    if (formatters.size >= 64) formatters.clear();
    formatters.set(tz, f);
  }
  return f;
}

interface Local {
  y: number;
  mo: number;
  d: number;
  /** Minutes after local midnight. */
  min: number;
  /** 0 = Sunday. */
  wd: number;
}

function local(ms: number, tz: string): Local {
  const p: Record<string, string> = {};
  for (const x of formatter(tz).formatToParts(new Date(ms))) p[x.type] = x.value;
  return {
    y: Number(p.year),
    mo: Number(p.month),
    d: Number(p.day),
    min: Number(p.hour) * 60 + Number(p.minute),
    wd: DAYS.indexOf(p.weekday.toLowerCase().slice(0, 3) as Day),
  };
}

/** The instant (ms) of local date `y-mo-d` at `min` minutes in `tz`. */
function instant(y: number, mo: number, d: number, min: number, tz: string): number {
  const wall = Date.UTC(y, mo - 1, d, 0, min);
  // the zone's offset at a guess, twice (the second corrects a guess on the other side of DST)
  let t = wall;
  for (let i = 0; i < 2; i++) {
    const l = local(t, tz);
    const offset = Date.UTC(l.y, l.mo - 1, l.d, 0, l.min) - Math.floor(t / 60_000) * 60_000;
    t = wall - offset;
  }
  return t;
}

const onDay = (w: MaintenanceWindow, wd: number) => !w.days || w.days.includes(DAYS[wd]);

/** True when `w` is open at `now` (ms since the epoch). */
export function isOpen(w: MaintenanceWindow, now: number): boolean {
  const s = minutesOf(w.start)!;
  const e = minutesOf(w.end)!;
  const l = local(now, w.tz);
  if (s < e) return onDay(w, l.wd) && l.min >= s && l.min < e;
  // crosses midnight: the evening part of today's window, or the morning part of yesterday's
  return (l.min >= s && onDay(w, l.wd)) || (l.min < e && onDay(w, (l.wd + 6) % 7));
}

/** When `w` next opens at or after `now`: `now` itself when it is open (null: never, in 8 days). */
export function nextOpening(w: MaintenanceWindow, now: number): number | null {
  if (isOpen(w, now)) return now;
  const s = minutesOf(w.start)!;
  const today = local(now, w.tz);
  for (let k = 0; k <= 8; k++) {
    const day = new Date(Date.UTC(today.y, today.mo - 1, today.d + k));
    if (!onDay(w, day.getUTCDay())) continue;
    const t = instant(day.getUTCFullYear(), day.getUTCMonth() + 1, day.getUTCDate(), s, w.tz);
    if (t > now) return t;
  }
  return null;
}

/** `22:00-04:00 UTC (fri, sat)`: the window as people read it. */
export function describeWindow(w: MaintenanceWindow): string {
  return `${w.start}-${w.end} ${w.tz}${w.days ? ` (${w.days.join(", ")})` : ""}`;
}
