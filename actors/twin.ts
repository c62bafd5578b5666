/**
 * The device twin as a pure transition function: `(state, message, now) -> {state, effects}`.
 * No I/O and no imports of NATS, MQTT, InfluxDB or Hono: the runtime executes the effects.
 * Replaying the same messages from the same state yields the same twin.
 * @module
 */
import { computeDelta, isObject, type JsonObject, mergePatch } from "./json.ts";
import type { DeviceBody } from "./validate.ts";
import type { Alarm } from "./rules/alarm.ts";
import type { CompiledProfile } from "./rules/compile.ts";
import { evaluate, tick } from "./rules/engine.ts";
import type { RulesState } from "./rules/state.ts";
import { acknowledge, type AlarmChange, applyOutcome } from "./twin_rules.ts";
import { type Command, complete, enqueue, expire, isOpen, markDelivered } from "./commands.ts";

/** Per-field metadata: when the value last changed (ms since epoch). */
export interface FieldMeta {
  ts: number;
}

/** Connectivity as reported by the device's `status` topic (or its will message). */
export interface Connectivity {
  status: "online" | "offline" | "unknown";
  /** When the status last changed (ms), or null if never reported. */
  since: number | null;
}

/** The twin as the contract shows it (`GET /v1/twins/{id}` adds `alarms`). */
export interface TwinState {
  id: string;
  version: number;
  attributes: JsonObject;
  reported: JsonObject;
  desired: JsonObject;
  delta: JsonObject;
  metadata: {
    reported: Record<string, FieldMeta>;
    desired: Record<string, FieldMeta>;
    createdAt: number;
    updatedAt: number;
  };
  connectivity: Connectivity;
  /** Open alarms (active or acknowledged), from the twin's profile rules. */
  alarms?: Alarm[];
}

/** What is persisted: the state plus the last applied sequence per message source. */
export interface TwinRecord {
  state: TwinState;
  /** Last applied sequence per source (exactly-once apply of redelivered messages). */
  seqs: Record<string, number>;
  /**
   * Keys of the last {@linkcode RECENT_KEYS} keyed device messages applied (cluster mode): a
   * device's resend of a message whose PUBACK was lost carries the same key and is skipped.
   */
  recent?: number[];
  /** State of the profile's rules. */
  rules?: RulesState;
  /** The last cleared alarms (newest last). */
  cleared?: Alarm[];
  /** Alarms opened so far (the sequence in alarm ids). */
  alarmSeq?: number;
  /** Commands: the open ones and the last finished ones, oldest first. */
  commands?: Command[];
  /** Device traffic, for diagnostics. */
  traffic?: Traffic;
}

/** Device messages seen by a twin (diagnostics: last seen, message rate). */
export interface Traffic {
  /** When the last device message arrived (ms). */
  lastSeen: number;
  /** Start of the current minute (ms) and messages in it; messages in the minute before. */
  minute: number;
  count: number;
  previous: number;
  /** Every device message applied. */
  total: number;
}

function countMessage(t: Traffic | undefined, at: number): Traffic {
  const minute = at - (at % 60_000);
  if (!t) return { lastSeen: at, minute, count: 1, previous: 0, total: 1 };
  if (minute === t.minute) return { ...t, lastSeen: at, count: t.count + 1, total: t.total + 1 };
  const previous = minute - t.minute === 60_000 ? t.count : 0;
  return { lastSeen: Math.max(at, t.lastSeen), minute, count: 1, previous, total: t.total + 1 };
}

/** How many message keys a twin remembers to recognise a device's resend. */
export const RECENT_KEYS = 128;

/** Messages a twin handles. */
export type TwinMessage =
  | {
    type: "device";
    /** The durable log this message came from, e.g. `mqtt` or `js.3`. */
    source: string;
    /** Sequence within the source, strictly increasing per source. */
    seq: number;
    /** Arrival time at the node (ms). */
    at: number;
    body: DeviceBody;
    /**
     * Identity of the device's message (client id, packet id, topic, payload hashed): a
     * message whose key is among the twin's recent keys is a resend and is not applied.
     */
    key?: number;
  }
  | { type: "patch_desired"; patch: JsonObject; ifMatch?: number }
  | { type: "put_attributes"; attributes: JsonObject }
  /** Time passes: rules with durations (forSeconds, stale, windows) may fire. */
  | { type: "tick" }
  | { type: "ack_alarm"; id: string; comment?: string }
  /** Queue a command for the device (delivered at once if it listens). */
  | { type: "command"; command: Command }
  /** These commands were handed to the device's MQTT session. */
  | { type: "commands_delivered"; ids: string[]; at: number }
  /** The device (re)subscribed to its commands: deliver every open one. */
  | { type: "commands_listening" };

/** A twin event as streamed to WebSocket clients. */
export interface TwinEvent {
  type: "telemetry" | "state" | "alarm" | "command";
  twin: string;
  version: number;
  ts: number;
  data: JsonObject;
}

/** Side effects for the runtime to execute, in order. */
export type TwinEffect =
  | {
    type: "point";
    /** Default `telemetry`. */
    measurement?: string;
    tags: Record<string, string>;
    fields: Record<string, number | boolean | string>;
    ts: number;
    /**
     * Nanoseconds within the millisecond `ts` (0–999,999): set from the message's durable
     * sequence when `ts` is its arrival time, so every message is its own point.
     */
    subMs?: number;
  }
  | { type: "event"; event: TwinEvent }
  | { type: "desired"; desired: JsonObject }
  | { type: "alarm"; alarm: Alarm; change: AlarmChange }
  | { type: "command"; rule: string; name: string; args: JsonObject }
  /** Hand these commands to the device, if it listens. */
  | { type: "deliver"; commands: Command[] }
  | {
    type: "webhook";
    rule: string;
    url: string;
    headers: Record<string, string>;
    body: JsonObject;
  }
  | { type: "fault"; rule: string; message: string; count: number };

/** Outcome of one message. */
export interface TwinResult {
  record: TwinRecord;
  effects: TwinEffect[];
  /** True when the message was a redelivery and was not applied. */
  duplicate?: boolean;
  /** With `duplicate`: a device's resend of an applied message (not a log redelivery). */
  resend?: boolean;
  /** Telemetry fields a deadband rule kept out of the point and the event. */
  suppressed?: number;
  /** Set when the message was refused (e.g. stale `If-Match`); state is unchanged. */
  error?:
    | { code: "version_conflict"; expected: number; actual: number }
    | { code: "alarm_not_found"; id: string }
    | { code: "command_queue_full"; open: number };
}

/** The twin before any message: version 0, empty maps. */
export function emptyTwin(id: string, now: number): TwinRecord {
  return {
    state: {
      id,
      version: 0,
      attributes: {},
      reported: {},
      desired: {},
      delta: {},
      metadata: { reported: {}, desired: {}, createdAt: now, updatedAt: now },
      connectivity: { status: "unknown", since: null },
    },
    seqs: {},
  };
}

const TAG_ATTRIBUTES = ["type", "site", "line"] as const;

/** InfluxDB tags for a twin: `device` plus `type`, `site`, `line` attributes when present. */
export function pointTags(state: TwinState): Record<string, string> {
  const tags: Record<string, string> = { device: state.id };
  for (const a of TAG_ATTRIBUTES) {
    const v = state.attributes[a];
    if (v !== undefined && v !== null && v !== "") tags[a] = String(v);
  }
  return tags;
}

/** The telemetry point a telemetry message produces (also used when replaying a duplicate). */
export function telemetryPoint(
  state: TwinState,
  body: Extract<DeviceBody, { kind: "telemetry" }>,
  at: number,
  seq: number,
): Extract<TwinEffect, { type: "point" }> {
  const p: Extract<TwinEffect, { type: "point" }> = {
    type: "point",
    tags: pointTags(state),
    fields: body.fields,
    ts: body.ts ?? at,
  };
  // the arrival time is the node's: its sub-ms part comes from the durable sequence (the same
  // on every replay); a device's own `ts` is kept exactly as sent
  if (body.ts === undefined) p.subMs = pointSubMs(seq);
  return p;
}

/**
 * Nanoseconds within the millisecond for the point of the message with durable sequence
 * `seq`: `seq mod 1,000,000`. A device's messages within one millisecond have sequences less
 * than a million apart, so their points never share a timestamp.
 */
export function pointSubMs(seq: number): number {
  return ((seq % 1_000_000) + 1_000_000) % 1_000_000;
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
    out[k] = old && JSON.stringify(before[k]) === JSON.stringify(after[k]) ? old : { ts };
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
      const seqs = { ...rec.seqs, [msg.source]: msg.seq };
      if (msg.key !== undefined && rec.recent?.includes(msg.key)) {
        // the resend is consumed (its sequence is applied) but changes nothing
        return { record: { ...rec, seqs }, effects: [], duplicate: true, resend: true };
      }
      const keep = msg.key === undefined ? undefined : remember(rec.recent, msg.key);
      const traffic = countMessage(rec.traffic, msg.at);
      const wrap = (state: TwinState): TwinRecord =>
        keep ? { ...rec, state, seqs, recent: keep, traffic } : { ...rec, state, seqs, traffic };
      const b = msg.body;
      if (b.kind === "command_result") {
        const done = complete(rec.commands ?? [], b.cmdId, b.result, msg.at);
        if (!done) return { record: wrap(s), effects: [] }; // unknown, finished or expired
        return {
          record: { ...wrap(s), commands: done.list },
          effects: [commandEvent(s, done.command, now)],
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
          effects: [event(state, "state", now, { connectivity })],
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
          effects: [event(state, "state", now, { reported: b.patch })],
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
            event(state, "telemetry", ts, { ...b.fields }),
          ],
        };
      }
      const out = evaluate(profile, rec.rules, { fields: b.fields, reported, ts }, now);
      let fields = b.fields;
      if (out.suppressed.length > 0) {
        fields = {};
        for (const k in b.fields) if (!out.suppressed.includes(k)) fields[k] = b.fields[k];
      }
      const own: TwinEffect[] = Object.keys(fields).length === 0 ? [] : [
        telemetryPoint(state, { ...b, fields }, msg.at, msg.seq),
        event(state, "telemetry", ts, { ...fields }),
      ];
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
        effects: r.changed ? [{ type: "alarm", alarm: r.alarm, change: "acknowledged" }] : [],
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

function commandEvent(state: TwinState, c: Command, ts: number): TwinEffect {
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
  return event(state, "command", ts, data);
}

function event(
  state: TwinState,
  type: TwinEvent["type"],
  ts: number,
  data: JsonObject,
): TwinEffect {
  return { type: "event", event: { type, twin: state.id, version: state.version, ts, data } };
}
