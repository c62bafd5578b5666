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
import type { TwinHost } from "../runtime/twin_host.ts";
import { type Subscription, type Transport, TransportError } from "../transport/port.ts";
import { subjects } from "../transport/subjects.ts";
import { shardOf } from "../sharding/shard.ts";
import { TwinmillError, UnavailableError } from "../errors.ts";
import type { SnapshotStore } from "../persistence/port.ts";
import { listTwins } from "../runtime/list_twins.ts";

type Req =
  | { op: "get"; id: string }
  | { op: "put"; id: string; attributes: JsonObject }
  | { op: "patch"; id: string; patch: JsonObject; ifMatch?: number };
type Rep =
  | { ok: true; state: TwinState | null }
  | { ok: false; error: { code: string; status: number; message: string } };

/** Serve a shard's requests from the local host while this node owns it. */
export function serveShard(transport: Transport, shard: number, host: TwinHost): Subscription {
  return transport.subscribe(subjects.shard(shard), (m) => {
    const req = m.data as Req;
    const run = req.op === "get"
      ? host.get(req.id)
      : req.op === "put"
      ? host.putAttributes(req.id, req.attributes)
      : host.patchDesired(req.id, req.patch, req.ifMatch);
    run.then(
      (state) => m.respond({ ok: true, state } satisfies Rep),
      (e) => {
        const err = e instanceof TwinmillError
          ? { code: e.code, status: e.status, message: e.message }
          : { code: "internal", status: 500, message: "Internal error" };
        m.respond({ ok: false, error: err } satisfies Rep);
      },
    );
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
  timeoutMs?: number;
}

/** The cluster's {@linkcode TwinService}: local when owned, routed otherwise. */
export class ClusterTwins implements TwinService {
  constructor(readonly o: ClusterTwinsOptions) {}

  async #call(req: Req): Promise<TwinState | null> {
    const shard = shardOf(req.id, this.o.shards);
    let rep: Rep;
    try {
      rep = await this.o.transport.request(subjects.shard(shard), req, {
        timeoutMs: this.o.timeoutMs ?? 5000,
      }) as Rep;
    } catch (err) {
      if (err instanceof TransportError) {
        throw new UnavailableError(
          "shard_unavailable",
          `Shard ${shard} of twin "${req.id}" has no owner right now (${err.code}); retry shortly`,
        );
      }
      throw err;
    }
    if (!rep.ok) throw new TwinmillError(rep.error.code, rep.error.status, rep.error.message);
    return rep.state;
  }

  get(id: string): Promise<TwinState | null> {
    return this.o.owns(shardOf(id, this.o.shards))
      ? this.o.host.get(id)
      : this.#call({ op: "get", id });
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
