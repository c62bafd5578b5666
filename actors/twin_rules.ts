/**
 * A twin's profile at work, as pure functions: the rules engine's outcome applied to the twin —
 * alarms opened, counted, cleared and acknowledged (each with its point and event); rollup
 * points; deadband suppression;
 * actions (desired changes applied here, commands and webhooks handed to the runtime).
 * @module
 */
import { ackAlarm, type Alarm, applyTransition } from "./rules/alarm.ts";
import type { RulesOutcome } from "./rules/outcome.ts";
import { computeDelta, type JsonObject, mergePatch } from "./json.ts";
import type { AlarmChange, TwinEffect, TwinRecord, TwinState } from "./twin.ts";

/**
 * Cleared alarms a twin keeps (newest last); every transition is also in InfluxDB
 * (`alarms`). Small on purpose: they travel in every snapshot of the twin.
 */
export const KEEP_CLEARED = 5;

/**
 * Apply a rules outcome to a twin whose message (if any) is already applied. Alarm changes
 * do not count as twin versions; a desired-state action does (once per outcome).
 */
export function applyOutcome(
  rec: TwinRecord,
  out: RulesOutcome,
  now: number,
  tags: Record<string, string>,
): { record: TwinRecord; effects: TwinEffect[] } {
  if (
    out.transitions.length === 0 && out.points.length === 0 && out.actions.length === 0 &&
    out.faults.length === 0
  ) {
    // the common case: rule state moved on, nothing to do
    return { record: out.state === rec.rules ? rec : { ...rec, rules: out.state }, effects: [] };
  }
  const effects: TwinEffect[] = [];
  let state = rec.state;
  let open = state.alarms ?? [];
  let cleared = rec.cleared ?? [];
  let seq = rec.alarmSeq ?? 0;
  // the twin's version after this outcome: a desired-state action counts one
  const version = out.transitions.length === 0 ? 0 : state.version +
    (out.actions.some((a) => a.action.type === "desired") ? 1 : 0);
  const changed = (a: Alarm, change: AlarmChange) =>
    effects.push(...alarmEffects(state.id, a, change, version));
  for (const t of out.transitions) {
    const i = open.findIndex((a) => a.rule === t.rule);
    const current = i >= 0 ? open[i] : null;
    const raisesNew = t.kind === "raise" && current === null;
    const next = applyTransition(current, state.id, t, raisesNew ? seq + 1 : seq);
    if (!next || next === current) continue;
    if (raisesNew) {
      seq++;
      open = [...open, next];
      changed(next, "raised");
    } else if (next.state === "cleared") {
      open = open.filter((_, k) => k !== i);
      cleared = [...cleared, next].slice(-KEEP_CLEARED);
      changed(next, "cleared");
    } else {
      open = open.map((a, k) => (k === i ? next : a));
      changed(next, "updated");
    }
  }
  for (const p of out.points) {
    // tagged with the rule: a 1-minute and a 5-minute window of one field start together
    effects.push({
      type: "point",
      measurement: p.measurement,
      tags: { ...tags, rule: p.rule },
      fields: p.fields,
      ts: p.ts,
    });
  }
  let desiredPatch: JsonObject | undefined;
  for (const { rule, action } of out.actions) {
    const alarm = open.find((a) => a.rule === rule) ??
      cleared.findLast((a) => a.rule === rule) ?? null;
    if (action.type === "desired") {
      desiredPatch = { ...desiredPatch, ...(action.patch as JsonObject) };
    } else if (action.type === "command") {
      effects.push({
        type: "command",
        rule,
        name: action.name,
        args: (action.args ?? {}) as JsonObject,
      });
    } else {
      effects.push({
        type: "webhook",
        rule,
        url: action.url,
        headers: action.headers ?? {},
        body: { event: action.on, twin: state.id, rule, alarm } as unknown as JsonObject,
      });
    }
  }
  for (const f of out.faults) effects.push({ type: "fault", ...f });
  if (open !== (state.alarms ?? [])) state = { ...state, alarms: open };
  if (desiredPatch) {
    const desired = mergePatch(state.desired, desiredPatch);
    state = {
      ...state,
      desired,
      delta: computeDelta(desired, state.reported),
      version: state.version + 1,
      metadata: { ...state.metadata, updatedAt: now },
    };
    effects.push({ type: "desired", desired });
    effects.push({
      type: "event",
      event: {
        type: "state",
        twin: state.id,
        version: state.version,
        ts: now,
        data: { desired: desiredPatch },
      },
    });
  }
  const record: TwinRecord = { ...rec, state, rules: out.state };
  if (cleared.length > 0) record.cleared = cleared;
  if (seq > 0) record.alarmSeq = seq;
  return { record, effects };
}

/**
 * What one alarm change asks of the runtime: the change itself (counted and logged), its point
 * in `alarms` and its event. `version` is the twin's version after the message that made the
 * change (read your own writes).
 */
export function alarmEffects(
  twin: string,
  alarm: Alarm,
  change: AlarmChange,
  version: number,
): TwinEffect[] {
  const fields: Record<string, number | boolean | string> = {
    state: alarm.state,
    acknowledged: alarm.acknowledged,
    raiseCount: alarm.raiseCount,
  };
  if (alarm.value !== null) fields.value = alarm.value;
  const data = { change, ...alarm } as unknown as JsonObject;
  return [
    { type: "alarm", alarm, change },
    {
      type: "point",
      measurement: "alarms",
      tags: { device: twin, rule: alarm.rule, severity: alarm.severity },
      fields,
      ts: alarm.updatedAt,
      // one point per transition: two in one millisecond differ below it
      unique: true,
    },
    { type: "event", event: { type: "alarm", twin, version, ts: alarm.updatedAt, data } },
  ];
}

/** Acknowledge one of the twin's alarms (open or recently cleared); null if it has none. */
export function acknowledge(
  rec: TwinRecord,
  id: string,
  now: number,
  comment?: string,
): { record: TwinRecord; alarm: Alarm; changed: boolean } | null {
  const open = rec.state.alarms ?? [];
  const i = open.findIndex((a) => a.id === id);
  if (i >= 0) {
    const alarm = ackAlarm(open[i], now, comment);
    if (alarm === open[i]) return { record: rec, alarm, changed: false };
    const state: TwinState = { ...rec.state, alarms: open.map((a, k) => (k === i ? alarm : a)) };
    return { record: { ...rec, state }, alarm, changed: true };
  }
  const cleared = rec.cleared ?? [];
  const j = cleared.findIndex((a) => a.id === id);
  if (j < 0) return null;
  const alarm = ackAlarm(cleared[j], now, comment);
  if (alarm === cleared[j]) return { record: rec, alarm, changed: false };
  return {
    record: { ...rec, cleared: cleared.map((a, k) => (k === j ? alarm : a)) },
    alarm,
    changed: true,
  };
}

/** Every alarm a twin holds: open ones, then recently cleared ones. */
export function alarmsOf(rec: TwinRecord): Alarm[] {
  return [...(rec.state.alarms ?? []), ...(rec.cleared ?? [])];
}
