/**
 * The device twin: its state, the messages it handles and the effects it asks the runtime
 * for; `applyTwin` (`twin_apply.ts`) is the pure transition function over them. No I/O and no
 * imports of NATS, MQTT, InfluxDB or Hono: the runtime executes the effects.
 * @module
 */
import { EMPTY_OBJECT, type JsonObject } from "./json.ts";
import type { DeviceBody } from "./validate.ts";
import type { Alarm } from "./rules/alarm.ts";
import type { RulesState } from "./rules/state.ts";
import type { Command } from "./commands.ts";
import { type UserProperties, withPropertyTags } from "./user_properties.ts";

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
   * Keys of the last {@linkcode RECENT_KEYS} keyed device messages applied (cluster mode, and
   * the bridge's messages): a device's resend of a message whose PUBACK was lost, or a
   * broker's redelivery, carries the same key and is skipped.
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
  /**
   * The rule points (alarm transitions, rollups) of device messages whose log entry may not be
   * retired yet, by entry sequence, oldest first: a replay of such an entry after a restart
   * (the twin stored past it) writes them again, as it writes the message's own point again.
   */
  unwritten?: UnwrittenPoints[];
}

/** The rule points one device message made (see `TwinRecord.unwritten`). */
export interface UnwrittenPoints {
  /** The message's durable sequence. */
  seq: number;
  points: Extract<TwinEffect, { type: "point" }>[];
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
     * message whose key is among the twin's recent keys is a resend and is not applied. A
     * negative key `-k` (a broker's first delivery of it, see `originKey`) is never a resend:
     * the message is applied and `k` remembered.
     */
    key?: number;
    /** The message's MQTT 5 user properties (shown on its event, tags where the profile says). */
    props?: UserProperties;
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
  /** The MQTT 5 user properties of the device message that made the event, if it had any. */
  properties?: Record<string, string | string[]>;
}

/** How an alarm changed. */
export type AlarmChange = "raised" | "updated" | "cleared" | "acknowledged";

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
    /**
     * One point per change (alarm transitions): the runtime sets `subMs` from the durable
     * sequence of the message applied, or from a counter of its own for changes no device
     * message made (ticks, acknowledgements).
     */
    unique?: boolean;
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

/** The last field metadata made: fields changed at the same time share it (it is frozen). */
let lastMeta: FieldMeta = Object.freeze({ ts: 0 });

/**
 * Field metadata `{ts}`, shared with every field (of any twin) changed at the same `ts`: the
 * last one made is reused (frozen, like every part of a twin, it is replaced, never changed).
 */
export function fieldMeta(ts: number): FieldMeta {
  if (lastMeta.ts !== ts) lastMeta = Object.freeze({ ts });
  return lastMeta;
}

/** Connectivity never reported, shared by every twin in that state (frozen). */
const UNKNOWN: Connectivity = Object.freeze({ status: "unknown", since: null });

/**
 * The twin before any message: version 0, empty maps. Its empty parts are shared and frozen
 * (`EMPTY_OBJECT`): a twin's parts are replaced by a change, never changed in place.
 */
export function emptyTwin(id: string, now: number): TwinRecord {
  return {
    state: {
      id,
      version: 0,
      attributes: EMPTY_OBJECT,
      reported: EMPTY_OBJECT,
      desired: EMPTY_OBJECT,
      delta: EMPTY_OBJECT,
      metadata: {
        reported: EMPTY_OBJECT as Record<string, FieldMeta>,
        desired: EMPTY_OBJECT as Record<string, FieldMeta>,
        createdAt: now,
        updatedAt: now,
      },
      connectivity: UNKNOWN,
    },
    seqs: EMPTY_OBJECT as Record<string, number>,
  };
}

/** `o`, or the shared empty object when `o` has no keys. */
function orEmpty<T extends object>(o: T): T {
  for (const _ in o) return o;
  return EMPTY_OBJECT as T;
}

/** `meta` with its `{ts}` objects shared (see {@linkcode fieldMeta}), or the shared empty one. */
function compactMeta(meta: Record<string, FieldMeta>): Record<string, FieldMeta> {
  const keys = Object.keys(meta);
  if (keys.length === 0) return EMPTY_OBJECT as Record<string, FieldMeta>;
  if (keys.includes("__proto__")) return meta; // an own data key: kept as parsed
  const out: Record<string, FieldMeta> = {};
  for (const k of keys) {
    const m = meta[k];
    out[k] = typeof m?.ts === "number" && Object.keys(m).length === 1 ? fieldMeta(m.ts) : m;
  }
  return out;
}

/**
 * A record read back from a snapshot, made as compact as one built by `applyTwin`: its empty
 * parts are the shared empty object, field metadata is shared, unknown connectivity too. It
 * changes `rec` in place (a freshly parsed record that nobody else holds) and returns it; its
 * JSON is unchanged.
 */
export function compactRecord(rec: TwinRecord): TwinRecord {
  const s = rec.state;
  s.attributes = orEmpty(s.attributes);
  s.reported = orEmpty(s.reported);
  s.desired = orEmpty(s.desired);
  s.delta = orEmpty(s.delta);
  s.metadata.reported = compactMeta(s.metadata.reported);
  s.metadata.desired = compactMeta(s.metadata.desired);
  if (s.connectivity.status === "unknown" && s.connectivity.since === null) {
    s.connectivity = UNKNOWN;
  }
  rec.seqs = orEmpty(rec.seqs);
  return rec;
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

/**
 * The telemetry point a telemetry message produces (also used when replaying a duplicate):
 * tagged by the twin ({@linkcode pointTags}) and by the message's user properties named in
 * `tagNames` (the profile's `tags`).
 */
export function telemetryPoint(
  state: TwinState,
  body: Extract<DeviceBody, { kind: "telemetry" }>,
  at: number,
  seq: number,
  props?: UserProperties,
  tagNames: readonly string[] = [],
): Extract<TwinEffect, { type: "point" }> {
  const p: Extract<TwinEffect, { type: "point" }> = {
    type: "point",
    tags: withPropertyTags(pointTags(state), props, tagNames),
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
