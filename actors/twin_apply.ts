/**
 * The device twin as a pure transition function: `(state, message, now) -> {state, effects}`.
 * Replaying the same messages from the same state yields the same twin.
 * @module
 */
import { computeDelta, EMPTY_OBJECT, isObject, type JsonObject, mergePatch } from "./json.ts";
import type { CompiledProfile } from "./rules/compile.ts";
import { evaluate, tick } from "./rules/engine.ts";
import { acknowledge, alarmEffects, applyOutcome } from "./twin_rules.ts";
import { type Command, complete, enqueue, expire, isOpen, markDelivered } from "./commands.ts";
import {
  type Connectivity,
  type FieldMeta,
  fieldMeta,
  pointTags,
  RECENT_KEYS,
  telemetryPoint,
  type Traffic,
  type TwinEffect,
  type TwinEvent,
  type TwinMessage,
  type TwinRecord,
  type TwinResult,
  type TwinState,
} from "./twin.ts";
import { propertiesObject, type UserProperties } from "./user_properties.ts";

function countMessage(t: Traffic | undefined, at: number): Traffic {
  const minute = at - (at % 60_000);
  if (!t) return { lastSeen: at, minute, count: 1, previous: 0, total: 1 };
  if (minute === t.minute) return { ...t, lastSeen: at, count: t.count + 1, total: t.total + 1 };
  const previous = minute - t.minute === 60_000 ? t.count : 0;
  return { lastSeen: Math.max(at, t.lastSeen), minute, count: 1, previous, total: t.total + 1 };
}

/** One-key `seqs` objects by source, parsed from JSON (so exact-size), to copy. */
const seqTemplates = new Map<string, Record<string, number>>();

/**
 * `seqs` with `source` at `seq`. A twin's first sequence is copied from an exact-size template:
 * a literal with a computed key keeps spare slots (24 B more in each of a million twins).
 */
function nextSeqs(
  seqs: Record<string, number>,
  source: string,
  seq: number,
): Record<string, number> {
  if (seqs !== EMPTY_OBJECT) return { ...seqs, [source]: seq };
  let t = seqTemplates.get(source);
  if (!t) seqTemplates.set(source, t = JSON.parse(JSON.stringify({ [source]: 0 })));
  return { ...t!, [source]: seq };
}

function remember(recent: number[] | undefined, key: number): number[] {
  const out = recent ? recent.slice(recent.length >= RECENT_KEYS ? 1 : 0) : [];
  out.push(key);
  return out;
}

function touchFields(
  meta: Record<string, FieldMeta>,
  before: JsonObject,
  after: JsonObject,
  ts: number,
): Record<string, FieldMeta> {
  const out: Record<string, FieldMeta> = {};
  for (const k of Object.keys(after)) {
    const old = meta[k];
    out[k] = old && JSON.stringify(before[k]) === JSON.stringify(after[k]) ? old : fieldMeta(ts);
  }
  return out;
}

function bump(s: TwinState, now: number, patch: Partial<TwinState>): TwinState {
  const next: TwinState = { ...s, ...patch, version: s.version + 1 };
  next.metadata = { ...next.metadata, updatedAt: now };
  next.delta = computeDelta(next.desired, next.reported);
  return next;
}

/**
 * Apply one message to a twin.
 *
 * @example
 * ```ts
 * let r = emptyTwin("press-7", 0);
 * r = applyTwin(r, { type: "put_attributes", attributes: { site: "A" } }, 1).record;
 * ```
 */
export function applyTwin(
  rec: TwinRecord,
  msg: TwinMessage,
  now: number,
  profile?: CompiledProfile,
): TwinResult {
  const s = rec.state;
  switch (msg.type) {
    case "device": {
      const last = rec.seqs[msg.source] ?? 0;
      if (msg.seq <= last) return { record: rec, effects: [], duplicate: true };
      const seqs = nextSeqs(rec.seqs, msg.source, msg.seq);
      // a negative key is a first delivery: remembered, never taken for a resend
      if (msg.key !== undefined && msg.key >= 0 && rec.recent?.includes(msg.key)) {
        // the resend is consumed (its sequence is applied) but changes nothing
        return { record: { ...rec, seqs }, effects: [], duplicate: true, resend: true };
      }
      const keep = msg.key === undefined ? undefined : remember(rec.recent, Math.abs(msg.key));
      const traffic = countMessage(rec.traffic, msg.at);
      // a new twin's first device message: its record written out (a spread that adds a key
      // puts it in a property array, 32 B more per twin); else copied with the changed keys
      const first = rec.traffic === undefined && Object.keys(rec).length === 2;
      const wrap = (state: TwinState): TwinRecord =>
        first
          ? keep ? { state, seqs, recent: keep, traffic } : { state, seqs, traffic }
          : keep
          ? { ...rec, state, seqs, recent: keep, traffic }
          : { ...rec, state, seqs, traffic };
      const b = msg.body;
      if (b.kind === "command_result") {
        const done = complete(rec.commands ?? [], b.cmdId, b.result, msg.at);
        if (!done) return { record: wrap(s), effects: [] }; // unknown, finished or expired
        return {
          record: { ...wrap(s), commands: done.list },
          effects: [commandEvent(s, done.command, now, msg.props)],
        };
      }
      if (b.kind === "status") {
        const status = b.online ? "online" : "offline";
        const connectivity: Connectivity = s.connectivity.status === status
          ? s.connectivity
          : { status, since: msg.at };
        const state = bump(s, now, { connectivity });
        return {
          record: wrap(state),
          effects: [event(state, "state", now, { connectivity }, msg.props)],
        };
      }
      if (b.kind === "reported") {
        const reported = mergePatch(s.reported, b.patch);
        const metaTs = msg.at;
        const state = bump(s, now, {
          reported,
          metadata: {
            ...s.metadata,
            reported: touchFields(s.metadata.reported, s.reported, reported, metaTs),
          },
        });
        return {
          record: wrap(state),
          effects: [event(state, "state", now, { reported: b.patch }, msg.props)],
        };
      }
      const ts = b.ts ?? msg.at;
      const reported = { ...s.reported, ...b.fields };
      const state = bump(s, now, {
        reported,
        metadata: {
          ...s.metadata,
          reported: touchFields(s.metadata.reported, s.reported, reported, ts),
        },
      });
      if (!profile) {
        return {
          record: wrap(state),
          effects: [
            telemetryPoint(state, b, msg.at, msg.seq),
            event(state, "telemetry", ts, { ...b.fields }, msg.props),
          ],
        };
      }
      const out = evaluate(profile, rec.rules, { fields: b.fields, reported, ts }, now);
      let fields = b.fields;
      if (out.suppressed.length > 0) {
        fields = {};
        for (const k in b.fields) if (!out.suppressed.includes(k)) fields[k] = b.fields[k];
      }
      const own: TwinEffect[] = [];
      if (Object.keys(fields).length > 0) {
        own.push(
          telemetryPoint(state, { ...b, fields }, msg.at, msg.seq, msg.props, profile.tags),
          event(state, "telemetry", ts, { ...fields }, msg.props),
        );
      }
      const r = applyOutcome(wrap(state), out, now, pointTags(state));
      const result: TwinResult = { record: r.record, effects: [...own, ...r.effects] };
      if (out.suppressed.length > 0) result.suppressed = out.suppressed.length;
      return result;
    }
    case "patch_desired": {
      if (msg.ifMatch !== undefined && msg.ifMatch !== s.version) {
        return {
          record: rec,
          effects: [],
          error: { code: "version_conflict", expected: msg.ifMatch, actual: s.version },
        };
      }
      const desired = mergePatch(s.desired, msg.patch);
      const state = bump(s, now, {
        desired,
        metadata: {
          ...s.metadata,
          desired: touchFields(s.metadata.desired, s.desired, desired, now),
        },
      });
      return {
        record: { ...rec, state },
        effects: [
          { type: "desired", desired },
          event(state, "state", now, { desired: msg.patch }),
        ],
      };
    }
    case "command": {
      const list = enqueue(rec.commands, msg.command);
      if (!list) {
        const open = (rec.commands ?? []).filter(isOpen).length;
        return { record: rec, effects: [], error: { code: "command_queue_full", open } };
      }
      if (list === rec.commands) return { record: rec, effects: [] };
      return {
        record: { ...rec, commands: list },
        effects: [
          commandEvent(s, msg.command, now),
          { type: "deliver", commands: [msg.command] },
        ],
      };
    }
    case "commands_delivered": {
      const before = rec.commands ?? [];
      const list = markDelivered(before, msg.ids, msg.at);
      const changed = list.filter((c, i) => c !== before[i]);
      if (changed.length === 0) return { record: rec, effects: [] };
      return {
        record: { ...rec, commands: list },
        effects: changed.map((c) => commandEvent(s, c, now)),
      };
    }
    case "commands_listening": {
      const open = (rec.commands ?? []).filter(isOpen);
      return { record: rec, effects: open.length ? [{ type: "deliver", commands: open }] : [] };
    }
    case "tick": {
      let r = rec;
      const effects: TwinEffect[] = [];
      if (rec.commands) {
        const e = expire(rec.commands, now);
        if (e.expired.length > 0) {
          r = { ...rec, commands: e.list };
          for (const c of e.expired) effects.push(commandEvent(s, c, now));
        }
      }
      if (!profile) return { record: r, effects };
      const out = tick(profile, r.rules, now);
      if (out.state === r.rules && out.transitions.length === 0 && out.points.length === 0) {
        return { record: r, effects };
      }
      const ruled = applyOutcome(r, out, now, pointTags(s));
      return { record: ruled.record, effects: [...effects, ...ruled.effects] };
    }
    case "ack_alarm": {
      const r = acknowledge(rec, msg.id, now, msg.comment);
      if (!r) return { record: rec, effects: [], error: { code: "alarm_not_found", id: msg.id } };
      return {
        record: r.record,
        effects: r.changed ? alarmEffects(s.id, r.alarm, "acknowledged", s.version) : [],
      };
    }
    case "put_attributes": {
      const attributes = isObject(msg.attributes) ? { ...msg.attributes } : {};
      const state = bump(s, now, { attributes });
      return {
        record: { ...rec, state },
        effects: [event(state, "state", now, { attributes })],
      };
    }
  }
}

function commandEvent(
  state: TwinState,
  c: Command,
  ts: number,
  props?: UserProperties,
): TwinEffect {
  const data: JsonObject = {
    id: c.id,
    name: c.name,
    status: c.status,
    source: c.source,
    createdAt: c.createdAt,
    expiresAt: c.expiresAt,
  };
  if (c.deliveredAt !== undefined) data.deliveredAt = c.deliveredAt;
  if (c.finishedAt !== undefined) data.finishedAt = c.finishedAt;
  if (c.result !== undefined) data.result = c.result;
  if (c.error !== undefined) data.error = c.error;
  return event(state, "command", ts, data, props);
}

function event(
  state: TwinState,
  type: TwinEvent["type"],
  ts: number,
  data: JsonObject,
  props?: UserProperties,
): TwinEffect {
  const e: TwinEvent = { type, twin: state.id, version: state.version, ts, data };
  // the device message's MQTT 5 user properties, if it had any
  if (props) e.properties = propertiesObject(props);
  return { type: "event", event: e };
}
