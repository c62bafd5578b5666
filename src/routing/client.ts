/**
 * Any node answers for any twin: {@linkcode ClusterTwins} runs an operation on the local twin
 * host when this node owns the twin's shard, and otherwise asks the owner by request/reply on
 * `tm.shard.{n}` (reads batched per owner node, see `reads.ts`). Its routed methods are not
 * written by hand: each comes from its entry in the operation table (`ops.ts`). A shard with
 * no owner (handoff or failover in progress) answers 503 `shard_unavailable`; the client
 * retries.
 * @module
 */
import type { TwinState } from "../../actors/twin.ts";
import type { Alarm } from "../../actors/rules/alarm.ts";
import type { TwinService } from "../runtime/twin_service.ts";
import type { TwinHost } from "../runtime/twin_host.ts";
import type { Transport } from "../transport/port.ts";
import { subjects } from "../transport/subjects.ts";
import { shardOf } from "../sharding/shard.ts";
import type { AlarmQuery } from "../rules/service.ts";
import type { SnapshotStore } from "../persistence/port.ts";
import { listAlarms, listTwins } from "../runtime/list_twins.ts";
import { type AnyTwinOp, opOf, type RoutedMethod, routedMethods, twinOf } from "./ops.ts";
import { decodeResult, encodeRequest, type Rep, send, unavailable } from "./wire.ts";
import { RoutedReads } from "./reads.ts";

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

/** The routed methods, defined on the class from the operation table (see the static block). */
export interface ClusterTwins extends Pick<TwinService, RoutedMethod> {}

/** The cluster's {@linkcode TwinService}: local when owned, routed to the owner otherwise. */
export class ClusterTwins implements TwinService {
  readonly #reads: RoutedReads;
  constructor(readonly o: ClusterTwinsOptions) {
    this.#reads = new RoutedReads(o);
  }

  static {
    for (const method of routedMethods) {
      Object.defineProperty(this.prototype, method, {
        value: function (this: ClusterTwins, ...args: unknown[]) {
          return this.#route(method, args);
        },
        writable: true,
        configurable: true,
      });
    }
  }

  /** Run `method` here when this node owns the twin's shard, else on the shard's owner. */
  #route(method: RoutedMethod, args: unknown[]): Promise<unknown> {
    const op = opOf(method);
    let twin: string;
    try {
      twin = twinOf(op, args);
    } catch (err) {
      return Promise.reject(err);
    }
    const shard = shardOf(twin, this.o.shards);
    if (this.o.owns(shard)) {
      const local = this.o.host[method] as (...args: unknown[]) => Promise<unknown>;
      return local.apply(this.o.host, args);
    }
    return op.batched ? this.#reads.get(twin, shard) : this.#ask(op, twin, shard, args);
  }

  async #ask(op: AnyTwinOp, twin: string, shard: number, args: unknown[]): Promise<unknown> {
    const rep = await send(
      this.o.transport,
      subjects.shard(shard),
      encodeRequest(op, twin, args),
      this.o.timeoutMs ?? 5000,
      (e) => unavailable(shard, `twin "${twin}"`, e),
    ) as Rep;
    return decodeResult(op, rep);
  }

  /** Alarms from the shared snapshot store (every owner commits within ~50 ms). */
  async listAlarms(q: AlarmQuery): Promise<{ items: Alarm[]; next?: string }> {
    await this.o.host.flush();
    return listAlarms(this.o.snapshots, q);
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
