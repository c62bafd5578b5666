/**
 * Any node answers for any twin: requests for a twin whose shard another node owns go by
 * request/reply on `tm.shard.{n}` to that owner, which serves them from its twin host.
 * A shard with no owner (handoff or failover in progress) answers 503 `shard_unavailable`;
 * the client retries.
 * @module
 */
import type { TwinState } from "../../actors/twin.ts";
import type { JsonObject } from "../../actors/json.ts";
import type { TwinService } from "../runtime/twin_service.ts";
import type { HostDiagnostics, TwinHost } from "../runtime/twin_host.ts";
import { type Subscription, type Transport, TransportError } from "../transport/port.ts";
import { subjects } from "../transport/subjects.ts";
import { shardOf } from "../sharding/shard.ts";
import { AlarmNotFoundError, TwinmillError, UnavailableError } from "../errors.ts";
import { type Alarm, parseAlarmId } from "../../actors/rules/alarm.ts";
import type { RuleStatus } from "../../actors/rules/state.ts";
import type { AlarmQuery } from "../rules/service.ts";
import type { SnapshotStore } from "../persistence/port.ts";
import { listAlarms, listTwins } from "../runtime/list_twins.ts";
import type { Command } from "../../actors/commands.ts";
import type { Logger } from "../obs/log.ts";

type Req =
  | { op: "get"; id: string }
  | { op: "gets"; ids: string[] }
  | { op: "ack"; id: string; alarm: string; comment?: string }
  | { op: "rules"; id: string }
  | { op: "put"; id: string; attributes: JsonObject }
  | { op: "patch"; id: string; patch: JsonObject; ifMatch?: number }
  | { op: "command"; id: string; command: Command }
  | { op: "commands"; id: string }
  | { op: "listening"; id: string }
  | { op: "diag"; id: string };
type Failure = { code: string; status: number; message: string };
type Rep =
  | {
    ok: true;
    state: TwinState | null;
    alarm?: Alarm;
    rules?: RuleStatus[] | null;
    command?: Command;
    commands?: Command[] | null;
    diag?: HostDiagnostics | null;
  }
  | { ok: false; error: Failure };
/** Reply to `gets`: one entry per id, in order. */
type Reps = { ok: true; results: Array<{ state: TwinState | null } | { error: Failure }> };

/** A batch to an expected owner node got no answer (retried through the shards). */
class NodeUnreachable extends Error {
  constructor(override readonly cause: TransportError) {
    super(cause.message);
  }
}

/** Most reads in one batched request. */
const MAX_BATCH = 256;
/** Batched reads in flight per target; later reads wait and go together in the next batch. */
export const MAX_BATCHES_IN_FLIGHT = 2;

function failure(e: unknown): Failure {
  return e instanceof TwinmillError
    ? { code: e.code, status: e.status, message: e.message }
    : { code: "internal", status: 500, message: "Internal error" };
}

function readAll(host: TwinHost, ids: string[], mine: (id: string) => boolean): Promise<Reps> {
  return Promise.all(
    ids.map((id) =>
      mine(id)
        ? host.get(id).then((state) => ({ state }), (e) => ({ error: failure(e) }))
        : { error: NOT_OWNER }
    ),
  ).then((results) => ({ ok: true, results }));
}

/** Answer for a read sent to a node that does not own the twin's shard (any more). */
const NOT_OWNER: Failure = { code: "not_owner", status: 503, message: "Not the owner" };

/** Serve a shard's requests from the local host while this node owns it. */
export function serveShard(
  transport: Transport,
  shard: number,
  host: TwinHost,
  log?: Logger,
): Subscription {
  return transport.subscribe(subjects.shard(shard), (m) => {
    const req = m.data as Req;
    log?.debug("routed request", {
      shard,
      op: req.op,
      ...(req.op === "gets" ? { twins: req.ids.length } : { twin: req.id }),
    });
    if (req.op === "gets") {
      readAll(host, req.ids, () => true).then((rep) => m.respond(rep));
      return;
    }
    const run: Promise<Rep> = req.op === "get"
      ? host.get(req.id).then((state) => ({ ok: true, state }))
      : req.op === "put"
      ? host.putAttributes(req.id, req.attributes).then((state) => ({ ok: true, state }))
      : req.op === "patch"
      ? host.patchDesired(req.id, req.patch, req.ifMatch).then((state) => ({ ok: true, state }))
      : req.op === "ack"
      ? host.ackAlarm(req.alarm, req.comment).then((alarm) => ({ ok: true, state: null, alarm }))
      : req.op === "command"
      ? host.sendCommand(req.id, req.command).then((command) => ({
        ok: true,
        state: null,
        command,
      }))
      : req.op === "commands"
      ? host.commands(req.id).then((commands) => ({ ok: true, state: null, commands }))
      : req.op === "listening"
      ? host.commandsListening(req.id).then(() => ({ ok: true, state: null }))
      : req.op === "diag"
      ? host.diagnostics(req.id).then((diag) => ({ ok: true, state: null, diag }))
      : host.ruleStatus(req.id).then((rules) => ({ ok: true, state: null, rules }));
    run.then(
      (rep) => m.respond(rep),
      (e) => m.respond({ ok: false, error: failure(e) } satisfies Rep),
    );
  });
}

/**
 * Serve batched reads addressed to this node (`tm.node.{id}`) for twins of any shard it owns;
 * a twin of a shard it does not own is answered `not_owner` and the caller asks the shard.
 */
export function serveNode(
  transport: Transport,
  nodeId: string,
  host: TwinHost,
  owns: (id: string) => boolean,
  log?: Logger,
): Subscription {
  return transport.subscribe(subjects.node(nodeId), (m) => {
    const req = m.data as Req;
    log?.debug("routed read batch", { twins: req.op === "gets" ? req.ids.length : 0 });
    if (req.op !== "gets") {
      const error = { code: "bad_request", status: 400, message: "Node subjects take reads only" };
      return m.respond({ ok: false, error } satisfies Rep);
    }
    readAll(host, req.ids, owns).then((rep) => m.respond(rep));
  });
}

/** Options of {@linkcode ClusterTwins}. */
export interface ClusterTwinsOptions {
  transport: Transport;
  host: TwinHost;
  snapshots: SnapshotStore;
  shards: number;
  /** True when this node owns the shard right now. */
  owns(shard: number): boolean;
  /** The node expected to own a shard (placement over the live nodes), if known. */
  ownerHint?(shard: number): string | undefined;
  timeoutMs?: number;
}

interface PendingGet {
  id: string;
  shard: number;
  resolve(state: TwinState | null): void;
  reject(err: unknown): void;
}

/** Reads waiting for a batch to one target, and how many batches are in flight. */
interface BatchQueue {
  /** `tm.node.{id}` (batch to the expected owner) or `tm.shard.{n}` (to the shard). */
  subject: string;
  waiting: PendingGet[];
  inFlight: number;
}

/**
 * The cluster's {@linkcode TwinService}: local when owned, routed otherwise.
 *
 * Routed reads are batched per owner node, group-commit style: a read goes out at once when
 * fewer than two batches to its twin's expected owner are in flight; otherwise it waits for
 * one to come back and leaves with every read that queued meanwhile, in one request. One read
 * alone pays one round trip; under load the cost of a NATS round trip is shared by the batch.
 * A batch is sent only after each of its reads arrived, so a read still sees every change
 * completed before it was made. The expected owner comes from placement; when it is wrong
 * (a handoff in progress) it answers `not_owner` and those reads go to the shard's subject,
 * which only the lease holder serves.
 */
export class ClusterTwins implements TwinService {
  readonly #queues = new Map<string, BatchQueue>();
  constructor(readonly o: ClusterTwinsOptions) {}

  #unavailable(shard: number, what: string, err: TransportError): UnavailableError {
    return new UnavailableError(
      "shard_unavailable",
      `Shard ${shard} of ${what} has no owner right now (${err.code}); retry shortly`,
    );
  }

  async #send(subject: string, req: Req, onError: (e: TransportError) => Error) {
    try {
      return await this.o.transport.request(subject, req, {
        timeoutMs: this.o.timeoutMs ?? 5000,
      });
    } catch (err) {
      if (err instanceof TransportError) throw onError(err);
      throw err;
    }
  }

  async #call(req: Exclude<Req, { op: "gets" }>): Promise<TwinState | null> {
    return (await this.#ask(req)).state;
  }

  async #ask(req: Exclude<Req, { op: "gets" }>): Promise<Extract<Rep, { ok: true }>> {
    const shard = shardOf(req.id, this.o.shards);
    const rep = await this.#send(
      subjects.shard(shard),
      req,
      (e) => this.#unavailable(shard, `twin "${req.id}"`, e),
    ) as Rep;
    if (!rep.ok) throw new TwinmillError(rep.error.code, rep.error.status, rep.error.message);
    return rep;
  }

  async ackAlarm(alarm: string, comment?: string): Promise<Alarm> {
    const parts = parseAlarmId(alarm);
    if (!parts) throw new AlarmNotFoundError(alarm);
    if (this.o.owns(shardOf(parts.twin, this.o.shards))) {
      return this.o.host.ackAlarm(alarm, comment);
    }
    return (await this.#ask({ op: "ack", id: parts.twin, alarm, comment })).alarm!;
  }

  async sendCommand(id: string, command: Command): Promise<Command> {
    if (this.o.owns(shardOf(id, this.o.shards))) return this.o.host.sendCommand(id, command);
    return (await this.#ask({ op: "command", id, command })).command!;
  }

  async commands(id: string): Promise<Command[] | null> {
    if (this.o.owns(shardOf(id, this.o.shards))) return this.o.host.commands(id);
    return (await this.#ask({ op: "commands", id })).commands ?? null;
  }

  async commandsListening(id: string): Promise<void> {
    if (this.o.owns(shardOf(id, this.o.shards))) return this.o.host.commandsListening(id);
    await this.#ask({ op: "listening", id });
  }

  async diagnostics(id: string): Promise<HostDiagnostics | null> {
    if (this.o.owns(shardOf(id, this.o.shards))) return this.o.host.diagnostics(id);
    return (await this.#ask({ op: "diag", id })).diag ?? null;
  }

  async ruleStatus(twin: string): Promise<RuleStatus[] | null> {
    if (this.o.owns(shardOf(twin, this.o.shards))) return this.o.host.ruleStatus(twin);
    return (await this.#ask({ op: "rules", id: twin })).rules ?? null;
  }

  /** Alarms from the shared snapshot store (every owner commits within ~50 ms). */
  async listAlarms(q: AlarmQuery): Promise<{ items: Alarm[]; next?: string }> {
    await this.o.host.flush();
    return listAlarms(this.o.snapshots, q);
  }

  #routedGet(id: string, shard: number, viaShard = false): Promise<TwinState | null> {
    const owner = viaShard ? undefined : this.o.ownerHint?.(shard);
    const subject = owner ? subjects.node(owner) : subjects.shard(shard);
    let q = this.#queues.get(subject);
    if (!q) this.#queues.set(subject, q = { subject, waiting: [], inFlight: 0 });
    const p = new Promise<TwinState | null>((resolve, reject) => {
      q.waiting.push({ id, shard, resolve, reject });
    });
    if (q.inFlight < MAX_BATCHES_IN_FLIGHT) this.#flush(q);
    return p;
  }

  #flush(q: BatchQueue): void {
    const batch = q.waiting.splice(0, MAX_BATCH);
    if (batch.length === 0) {
      if (q.inFlight === 0) this.#queues.delete(q.subject);
      return;
    }
    q.inFlight++;
    // Reads of one twin in one batch share one answer: all of them arrived before it was sent.
    const index = new Map<string, number>();
    for (const b of batch) if (!index.has(b.id)) index.set(b.id, index.size);
    const ids = [...index.keys()];
    const toNode = q.subject.startsWith(subjects.node(""));
    this.#send(q.subject, { op: "gets", ids }, (e) =>
      // a node that does not answer: its twins' shards may have moved, ask them directly
      toNode ? new NodeUnreachable(e) : this.#unavailable(
        batch[0].shard,
        ids.length === 1 ? `twin "${ids[0]}"` : `${ids.length} twins`,
        e,
      )).then(
        (rep) => {
          const results = (rep as Reps).results;
          for (const b of batch) {
            const r = results?.[index.get(b.id)!];
            if (!r) b.reject(new Error(`Reply from ${q.subject} misses twin "${b.id}"`));
            else if ("state" in r) b.resolve(r.state);
            else if (r.error.code === NOT_OWNER.code) this.#retry(b);
            else b.reject(new TwinmillError(r.error.code, r.error.status, r.error.message));
          }
        },
        (err) => {
          for (const b of batch) err instanceof NodeUnreachable ? this.#retry(b) : b.reject(err);
        },
      ).finally(() => {
        q.inFlight--;
        this.#flush(q);
      });
  }

  /** Ask the twin's shard (its lease holder) after its expected owner could not answer. */
  #retry(b: PendingGet): void {
    this.#routedGet(b.id, b.shard, true).then(b.resolve, b.reject);
  }

  get(id: string): Promise<TwinState | null> {
    const shard = shardOf(id, this.o.shards);
    return this.o.owns(shard) ? this.o.host.get(id) : this.#routedGet(id, shard);
  }

  async putAttributes(id: string, attributes: JsonObject): Promise<TwinState> {
    if (this.o.owns(shardOf(id, this.o.shards))) return this.o.host.putAttributes(id, attributes);
    return (await this.#call({ op: "put", id, attributes }))!;
  }

  async patchDesired(id: string, patch: JsonObject, ifMatch?: number): Promise<TwinState> {
    if (this.o.owns(shardOf(id, this.o.shards))) {
      return this.o.host.patchDesired(id, patch, ifMatch);
    }
    return (await this.#call({ op: "patch", id, patch, ifMatch }))!;
  }

  /** Listing reads the shared snapshot store (every owner commits within milliseconds). */
  async list(
    after: string | undefined,
    limit: number,
    filter: Record<string, string>,
  ): Promise<{ items: TwinState[]; next?: string }> {
    await this.o.host.flush();
    return listTwins(this.o.snapshots, after, limit, filter);
  }
}
