/**
 * Commands to a device, kept in its twin record: queued while the device is not listening,
 * delivered when it is, finished by the device's result, expired by time. Pure functions; the
 * runtime publishes deliveries and ticks expiries.
 *
 * Lifecycle: `pending` (queued) → `delivered` (the device acknowledged it, e.g. its MQTT
 * PUBACK) → `succeeded` | `failed` (the device's result); `pending` or `delivered` → `expired`
 * when the command's deadline passes first. A delivered command without a result is delivered
 * again when the device subscribes again (at least once: devices recognise a repeat by its id).
 * @module
 */
import type { JsonObject } from "./json.ts";

/** Where a command is in its lifecycle. */
export type CommandStatus = "pending" | "delivered" | "succeeded" | "failed" | "expired";

/** A command as the twin keeps it (and the API shows it). */
export interface Command {
  id: string;
  name: string;
  args: JsonObject;
  mode: "sync" | "async";
  status: CommandStatus;
  /** Who asked: `api` or `rule:{ruleId}`. */
  source: string;
  /** ms since the epoch. */
  createdAt: number;
  /** When it expires unless finished. */
  expiresAt: number;
  deliveredAt?: number;
  finishedAt?: number;
  /** How many times it was handed to the device. */
  deliveries: number;
  /** The device's `result` (succeeded). */
  result?: unknown;
  /** The device's `error` (failed), or why the twin failed it. */
  error?: unknown;
}

/** Open (pending or delivered) commands a twin may hold; more are refused. */
export const MAX_OPEN_COMMANDS = 16;
/** Finished commands a twin keeps for `GET .../commands` (newest). */
export const KEEP_FINISHED_COMMANDS = 20;

/** True while a command may still be delivered or answered. */
export function isOpen(c: Command): boolean {
  return c.status === "pending" || c.status === "delivered";
}

/** Keep every open command and the newest finished ones, oldest first. */
function trim(list: Command[]): Command[] {
  const finished = list.filter((c) => !isOpen(c));
  if (finished.length <= KEEP_FINISHED_COMMANDS) return list;
  const drop = new Set(finished.slice(0, finished.length - KEEP_FINISHED_COMMANDS));
  return list.filter((c) => !drop.has(c));
}

/** Queue a command; null when the queue is full (`MAX_OPEN_COMMANDS` open ones). */
export function enqueue(list: Command[] | undefined, cmd: Command): Command[] | null {
  const l = list ?? [];
  if (l.filter(isOpen).length >= MAX_OPEN_COMMANDS) return null;
  if (l.some((c) => c.id === cmd.id)) return l; // the same request again: already queued
  return trim([...l, cmd]);
}

/** Mark commands handed to the device. */
export function markDelivered(list: Command[], ids: string[], at: number): Command[] {
  return list.map((c) =>
    ids.includes(c.id) && isOpen(c)
      ? { ...c, status: "delivered", deliveredAt: at, deliveries: c.deliveries + 1 }
      : c
  );
}

/**
 * Apply the device's result `{status: "ok"|"error", result|error}`: the finished command, or
 * null when no open command has that id (unknown, or already finished or expired). A result of
 * a command still `pending` shows that it was delivered: its acknowledgement (PUBACK) may reach
 * the twin after the result.
 */
export function complete(
  list: Command[],
  id: string,
  body: JsonObject,
  at: number,
): { list: Command[]; command: Command } | null {
  const i = list.findIndex((c) => c.id === id);
  if (i < 0 || !isOpen(list[i])) return null;
  const c = list[i].status === "pending"
    ? { ...list[i], deliveredAt: at, deliveries: Math.max(1, list[i].deliveries) }
    : list[i];
  const done: Command = body.status === "ok"
    ? { ...c, status: "succeeded", finishedAt: at, result: body.result ?? null }
    : {
      ...c,
      status: "failed",
      finishedAt: at,
      error: body.status === "error"
        ? body.error ?? null
        : `result status must be "ok" or "error", got ${JSON.stringify(body.status ?? null)}`,
    };
  const next = list.slice();
  next[i] = done;
  return { list: trim(next), command: done };
}

/** Expire the open commands whose deadline has passed. */
export function expire(list: Command[], now: number): { list: Command[]; expired: Command[] } {
  const expired: Command[] = [];
  const next = list.map((c) => {
    if (!isOpen(c) || c.expiresAt > now) return c;
    const e: Command = { ...c, status: "expired", finishedAt: now };
    expired.push(e);
    return e;
  });
  return expired.length === 0 ? { list, expired } : { list: trim(next), expired };
}

/** The earliest deadline of an open command, or null. */
export function nextExpiry(list: Command[] | undefined): number | null {
  let at: number | null = null;
  for (const c of list ?? []) if (isOpen(c) && (at === null || c.expiresAt < at)) at = c.expiresAt;
  return at;
}

/** What a device receives on `twins/{id}/commands/{cmdId}`. */
export function commandPayload(c: Command): { id: string; name: string; args: JsonObject } {
  return { id: c.id, name: c.name, args: c.args };
}

/** A fresh id: time-ordered (base 36 ms) plus 48 random bits; valid as an MQTT topic level. */
export function commandId(now: number): string {
  const r = new Uint8Array(6);
  crypto.getRandomValues(r);
  return `${now.toString(36)}-${Array.from(r, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** A new pending command. */
export function newCommand(o: {
  name: string;
  args: JsonObject;
  mode: Command["mode"];
  source: string;
  now: number;
  ttlMs: number;
  id?: string;
}): Command {
  return {
    id: o.id ?? commandId(o.now),
    name: o.name,
    args: o.args,
    mode: o.mode,
    status: "pending",
    source: o.source,
    createdAt: o.now,
    expiresAt: o.now + o.ttlMs,
    deliveries: 0,
  };
}
