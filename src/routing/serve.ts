/**
 * The owner's side of routing: a node serves `tm.shard.{n}` for each shard it owns, running
 * every operation of the table (`ops.ts`) on its local twin host, and `tm.node.{id}` for
 * batched reads of twins of any shard it owns.
 * @module
 */
import type { TwinService } from "../runtime/twin_service.ts";
import type { Message, Subscription, Transport } from "../transport/port.ts";
import { subjects } from "../transport/subjects.ts";
import type { Logger } from "../obs/log.ts";
import { type AnyTwinOp, opOf, type RoutedMethod, routedMethods } from "./ops.ts";
import {
  decodeArgs,
  encodeResult,
  type Failure,
  failure,
  NOT_OWNER,
  type OpRequest,
  type ReadsRequest,
  type Rep,
  type Reps,
  type Req,
} from "./wire.ts";

/** The table's entries by wire name. */
const byOp = new Map<string, { method: RoutedMethod; op: AnyTwinOp }>(
  routedMethods.map((method) => [opOf(method).op, { method, op: opOf(method) }]),
);

const UNKNOWN_OP: Failure = { code: "bad_request", status: 400, message: "Unknown operation" };
const READS_ONLY: Failure = {
  code: "bad_request",
  status: 400,
  message: "Node subjects take reads only",
};

/** Run one operation on the local host and answer its result, or its error as a failure. */
function run(host: TwinService, req: OpRequest, m: Message): void {
  const entry = byOp.get(req.op);
  if (!entry) return m.respond({ ok: false, error: UNKNOWN_OP } satisfies Rep);
  const call = host[entry.method] as (...args: unknown[]) => Promise<unknown>;
  call.apply(host, decodeArgs(entry.op, req)).then(
    (result) => m.respond(encodeResult(entry.op, result)),
    (e) => m.respond({ ok: false, error: failure(e) } satisfies Rep),
  );
}

/** Read `ids` (those `mine` says this node owns; the others answer `not_owner`). */
function readAll(host: TwinService, ids: string[], mine: (id: string) => boolean): Promise<Reps> {
  return Promise.all(
    ids.map((id) =>
      mine(id)
        ? host.get(id).then((state) => ({ state }), (e) => ({ error: failure(e) }))
        : { error: NOT_OWNER }
    ),
  ).then((results) => ({ ok: true, results }));
}

const always = () => true;

/** Serve a shard's requests from the local host while this node owns it. */
export function serveShard(
  transport: Transport,
  shard: number,
  host: TwinService,
  log?: Logger,
): Subscription {
  return transport.subscribe(subjects.shard(shard), (m) => {
    const req = m.data as Req;
    log?.debug("routed request", {
      shard,
      op: req.op,
      ...(req.op === "gets"
        ? { twins: (req as ReadsRequest).ids.length }
        : { twin: (req as OpRequest).id }),
    });
    if (req.op !== "gets") return run(host, req as OpRequest, m);
    readAll(host, (req as ReadsRequest).ids, always).then((rep) => m.respond(rep));
  });
}

/**
 * Serve batched reads addressed to this node (`tm.node.{id}`) for twins of any shard it owns;
 * a twin of a shard it does not own is answered `not_owner` and the caller asks the shard.
 */
export function serveNode(
  transport: Transport,
  nodeId: string,
  host: TwinService,
  owns: (id: string) => boolean,
  log?: Logger,
): Subscription {
  return transport.subscribe(subjects.node(nodeId), (m) => {
    const req = m.data as Req;
    const ids = req.op === "gets" ? (req as ReadsRequest).ids : undefined;
    log?.debug("routed read batch", { twins: ids?.length ?? 0 });
    if (!ids) return m.respond({ ok: false, error: READS_ONLY } satisfies Rep);
    readAll(host, ids, owns).then((rep) => m.respond(rep));
  });
}
