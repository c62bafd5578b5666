/**
 * What routed twin operations look like on the wire (JSON over NATS, by reference on the
 * memory transport), and how an error crosses it: the owner sends its code, HTTP status,
 * message and class name, and the caller rethrows an error the gateway's one error handler
 * answers exactly as the owner's would.
 * @module
 */
import type { TwinState } from "../../actors/twin.ts";
import { TwinmillError, UnavailableError } from "../errors.ts";
import { type Transport, TransportError } from "../transport/port.ts";
import type { AnyTwinOp } from "./ops.ts";

/** One operation: `op`, the twin whose shard answers, then each argument by field name. */
export interface OpRequest {
  op: string;
  id: string;
  [field: string]: unknown;
}
/** Batched reads of twins (to a node or a shard). */
export interface ReadsRequest {
  op: "gets";
  ids: string[];
}
/** Any request on `tm.shard.{n}` or `tm.node.{id}`. */
export type Req = OpRequest | ReadsRequest;

/** An error as it crosses the wire. */
export interface Failure {
  code: string;
  status: number;
  message: string;
  /** The error's class name on the owner (`TwinNotFoundError`, `TypeError`, ...). */
  name?: string;
  /** An uncoded error's own message (the caller rethrows it as such; users never see it). */
  reason?: string;
}
/** Reply to one operation: the result in the operation's reply field. */
export type Rep =
  | { ok: true; state: TwinState | null; [field: string]: unknown }
  | { ok: false; error: Failure };
/** Reply to `gets`: one entry per id, in order. */
export interface Reps {
  ok: true;
  results: Array<{ state: TwinState | null } | { error: Failure }>;
}

/** Answer for a read sent to a node that does not own the twin's shard (any more). */
export const NOT_OWNER: Failure = { code: "not_owner", status: 503, message: "Not the owner" };

/** `error` as it crosses the wire: coded errors as they are, any other as a 500. */
export function failure(error: unknown): Failure {
  if (error instanceof TwinmillError) {
    const { code, status, message, name } = error;
    return { code, status, message, name };
  }
  const f: Failure = { code: "internal", status: 500, message: "Internal error" };
  if (error instanceof Error) {
    f.name = error.name;
    f.reason = error.message;
  }
  return f;
}

/**
 * A coded error thrown on the twin's owner, rethrown on the node that routed the call: the
 * same code, HTTP status, message and class name.
 */
export class RoutedError extends TwinmillError {
  constructor(f: Failure) {
    super(f.code, f.status, f.message);
    this.name = f.name ?? "TwinmillError";
  }
}

/** Built-in errors the gateway's error handler tells apart (`TypeError`: storage limits). */
const BUILTIN: Record<string, ErrorConstructor> = {
  Error,
  TypeError,
  RangeError,
  URIError,
  SyntaxError,
};

/** The error to throw for a failure the owner sent. */
export function errorOf(f: Failure): Error {
  if (f.reason === undefined) return new RoutedError(f);
  const builtin = f.name === undefined ? undefined : BUILTIN[f.name];
  const err = new (builtin ?? Error)(f.reason);
  if (!builtin && f.name) err.name = f.name;
  return err;
}

/** The request that runs `op` with `args` on the owner of `twin`'s shard. */
export function encodeRequest(op: AnyTwinOp, twin: string, args: unknown[]): OpRequest {
  const req: OpRequest = { op: op.op, id: twin };
  for (let i = 0; i < op.args.length; i++) req[op.args[i]] = args[i];
  return req;
}

/** The arguments of a request for `op`. */
export function decodeArgs(op: AnyTwinOp, req: OpRequest): unknown[] {
  const args = new Array<unknown>(op.args.length);
  for (let i = 0; i < op.args.length; i++) args[i] = req[op.args[i]];
  return args;
}

/** The reply carrying `op`'s result. */
export function encodeResult(op: AnyTwinOp, result: unknown): Rep {
  if (op.reply === "state") return { ok: true, state: result as TwinState | null };
  return op.reply ? { ok: true, state: null, [op.reply]: result } : { ok: true, state: null };
}

/** `op`'s result from its reply; throws the owner's error. */
export function decodeResult(op: AnyTwinOp, rep: Rep): unknown {
  if (!rep.ok) throw errorOf(rep.error);
  return op.reply ? rep[op.reply] ?? null : undefined;
}

/** 503 `shard_unavailable`: the shard of `what` has no owner right now. */
export function unavailable(shard: number, what: string, err: TransportError): UnavailableError {
  return new UnavailableError(
    "shard_unavailable",
    `Shard ${shard} of ${what} has no owner right now (${err.code}); retry shortly`,
  );
}

/** Send `req` to `subject`; a transport failure becomes `onError`'s error. */
export async function send(
  transport: Transport,
  subject: string,
  req: Req,
  timeoutMs: number,
  onError: (e: TransportError) => Error,
): Promise<unknown> {
  try {
    return await transport.request(subject, req, { timeoutMs });
  } catch (err) {
    if (err instanceof TransportError) throw onError(err);
    throw err;
  }
}
