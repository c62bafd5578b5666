/**
 * Liveness of cluster members, faster than their heartbeats expire: each node answers requests
 * on `tm.alive.{node}`. When a node's process dies (`kill -9`, a crash), its TCP connection
 * closes and the NATS server drops its subscriptions at once, so a request to its subject is
 * answered "no responders" within one round trip. A node that is alive but not answering (paused
 * with `SIGSTOP`, an event loop stuck) keeps its connection and its subscription: the request
 * times out, which counts as alive. Only "no responders" counts as gone.
 *
 * "Gone" is a hint that lets survivors start taking a member's leases over early
 * (`kv_leases.ts`); it is never enough alone: the lease must also stay unrenewed, and writes
 * of a fenced owner stay fenced by its lease.
 * @module
 */
import {
  Empty,
  type NatsConnection,
  NoRespondersError,
  RequestError,
  type Subscription,
} from "@nats-io/transport-node";

/** The subject a node answers liveness probes on. */
export function aliveSubject(node: string): string {
  return `tm.alive.${node}`;
}

/** How long a probe waits for an answer before counting the member as alive (ms). */
export const PROBE_TIMEOUT_MS = 250;
/** A probe's answer is reused this long (ms): one round asks about many shards of a member. */
const REUSE_MS = 100;

/** Answers this node's liveness probes and probes other members. */
export class Liveness {
  #sub: Subscription | null;
  readonly #recent = new Map<string, { at: number; gone: Promise<boolean> }>();
  private constructor(readonly nc: NatsConnection, readonly nodeId: string, sub: Subscription) {
    this.#sub = sub;
  }

  /** Start answering on `tm.alive.{nodeId}`; `flush` makes the subscription known to the server. */
  static async serve(nc: NatsConnection, nodeId: string): Promise<Liveness> {
    const sub = nc.subscribe(aliveSubject(nodeId), {
      callback: (_err, msg) => void msg.respond(Empty),
    });
    await nc.flush();
    return new Liveness(nc, nodeId, sub);
  }

  /**
   * True only when the NATS servers know no subscriber of `node`'s liveness subject ("no
   * responders"): its connection is gone. A timeout, or any other failure, is false.
   */
  gone(node: string): Promise<boolean> {
    if (node === this.nodeId) return Promise.resolve(this.#sub === null);
    const now = performance.now();
    const seen = this.#recent.get(node);
    if (seen && now - seen.at < REUSE_MS) return seen.gone;
    const gone = this.#probe(node);
    this.#recent.set(node, { at: now, gone });
    return gone;
  }

  async #probe(node: string): Promise<boolean> {
    try {
      await this.nc.request(aliveSubject(node), Empty, { timeout: PROBE_TIMEOUT_MS });
      return false;
    } catch (err) {
      return err instanceof NoRespondersError ||
        (err instanceof RequestError && err.isNoResponders());
    }
  }

  /** Stop answering (after a graceful leave handed every shard off). */
  stop(): void {
    this.#sub?.unsubscribe();
    this.#sub = null;
  }
}
