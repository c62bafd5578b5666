/**
 * The table of twin operations a node routes to the owner of the twin's shard: one entry per
 * {@linkcode TwinService} method the owner answers. Both sides of `tm.shard.{n}` come from it:
 * the owner's server (`serveShard`, serve.ts) calls the method of the same name on its local
 * twin host, and the routed client (`ClusterTwins`, client.ts) runs it locally or sends it to
 * the owner. A new twin operation is a `TwinService` method, its `TwinHost` implementation and
 * one entry here (the compiler asks for the entry).
 *
 * On the wire a request is `{op, id, ...fields}`: `id` is the twin whose shard answers, then
 * each argument under its field name; a reply is `{ok: true, state, [reply]: result}` or
 * `{ok: false, error: {code, status, message}}` (see `wire.ts`).
 * @module
 */
import type { TwinService } from "../runtime/twin_service.ts";
import { parseAlarmId } from "../../actors/rules/alarm.ts";
import { AlarmNotFoundError } from "../errors.ts";

/** The `TwinService` methods the twin's owner answers (the others read shared storage). */
export type RoutedMethod = Exclude<keyof TwinService, "list" | "listAlarms">;

/** Reply field that carries an operation's result. */
export type ReplyField = "state" | "alarm" | "rules" | "command" | "commands" | "diag";

/** A request field name for each parameter of a method. */
type Fields<P extends unknown[]> = { readonly [K in keyof P]-?: string };

/** How one operation travels to the twin's owner and back. */
export interface TwinOp<M extends RoutedMethod> {
  /** Its name on the wire (the request's `op`). */
  op: string;
  /** The request field of each argument, in order. */
  args: Fields<Parameters<TwinService[M]>>;
  /** The reply field of its result; none for an operation without a result. */
  reply?: ReplyField;
  /** The twin whose shard owner answers; default: the first argument. */
  twin?(...args: Parameters<TwinService[M]>): string;
  /** Reads batched per owner node in one `gets` request (see `reads.ts`). */
  batched?: true;
}

/** Every routed operation, by method name. */
export type TwinOps = { readonly [M in RoutedMethod]: TwinOp<M> };

/** The twin of an alarm id; an id that names none is an unknown alarm (404). */
function alarmTwin(alarm: string): string {
  const parts = parseAlarmId(alarm);
  if (!parts) throw new AlarmNotFoundError(alarm);
  return parts.twin;
}

/** The routed twin operations. */
export const twinOps: TwinOps = {
  get: { op: "get", args: ["id"], reply: "state", batched: true },
  putAttributes: { op: "put", args: ["id", "attributes"], reply: "state" },
  patchDesired: { op: "patch", args: ["id", "patch", "ifMatch"], reply: "state" },
  ackAlarm: { op: "ack", args: ["alarm", "comment"], reply: "alarm", twin: alarmTwin },
  sendCommand: { op: "command", args: ["id", "command"], reply: "command" },
  commands: { op: "commands", args: ["id"], reply: "commands" },
  commandsListening: { op: "listening", args: ["id"] },
  diagnostics: { op: "diag", args: ["id"], reply: "diag" },
  ruleStatus: { op: "rules", args: ["id"], reply: "rules" },
};

/** The routed methods, in table order. */
export const routedMethods = Object.keys(twinOps) as RoutedMethod[];

/** An operation of the table seen without its argument types (for the generic code paths). */
export interface AnyTwinOp {
  op: string;
  args: readonly string[];
  reply?: ReplyField;
  twin?(...args: unknown[]): string;
  batched?: true;
}

/** The entry of `method`, argument types erased. */
export function opOf(method: RoutedMethod): AnyTwinOp {
  return twinOps[method] as AnyTwinOp;
}

/** The twin whose shard answers a call of `op` with `args`. */
export function twinOf(op: AnyTwinOp, args: unknown[]): string {
  return op.twin ? op.twin(...args) : args[0] as string;
}
