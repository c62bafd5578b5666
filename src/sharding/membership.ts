/**
 * Cluster membership by heartbeats in a JetStream KV bucket whose TTL (max age) is the
 * membership timeout: every node puts its {@linkcode NodeInfo} under its id every
 * `heartbeatMs`; a node that stops (crash, partition, `kill -9`) is dropped by the **server**
 * `ttlMs` after its last heartbeat, so no node's clock decides liveness. A graceful leave
 * deletes the key at once.
 *
 * Watching: a KV watch reports puts and deletes immediately (joins, leaves, changed info), but
 * on nats-server 2.9 an entry removed by max age produces **no** event (delete markers for
 * expiry arrived in 2.11). So {@linkcode Membership.watch} also rescans on a clock timer
 * (`pollMs`, default the heartbeat interval); a crashed node is reported gone within
 * `ttlMs + pollMs` (plus the server's expiry lag, a few ms in practice). Every rescan reads the
 * bucket after the event that caused it, so the reported list always converges to the server's.
 *
 * Defaults: TTL 6 s, heartbeat 1 s (a node survives 5 lost heartbeats). Bucket
 * `twinmill_nodes`. If the bucket exists with another TTL, the bucket's TTL wins.
 *
 * @example
 * ```ts
 * await using members = new Membership({ nc, info: { id: "node-a", http: "http://10.0.0.5:8080",
 *   mqtt: "mqtt://10.0.0.5:1883", startedAt: Date.now() }, clock: systemClock, logger });
 * await members.start();
 * await using w = await members.watch(({ nodes, joined, left }) => rebalance(nodes));
 * ```
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { type KV, Kvm, KvWatchInclude } from "@nats-io/kv";
import type { Clock, TimerId } from "../runtime/clock.ts";
import type { Logger } from "../obs/log.ts";

/** What a node announces about itself. */
export interface NodeInfo {
  /** Node id (`TWINMILL_NODE_ID`): letters, digits, `-`, `_`, `=`, and inner dots. */
  id: string;
  /** Base URL of its HTTP gateway. */
  http: string;
  /** URL of its MQTT listener, or `null` when it has none. */
  mqtt: string | null;
  /** When the node started (ms since the epoch, its own clock; informational). */
  startedAt: number;
}

/** A change of the live node set, as seen by a {@linkcode Membership.watch}. */
export interface MembershipChange {
  /** All live nodes, sorted by id. */
  nodes: NodeInfo[];
  /** Ids that appeared (all of them on the first call). */
  joined: string[];
  /** Ids that disappeared (deleted or expired). */
  left: string[];
  /** Ids still live whose info changed. */
  changed: string[];
}

/** A running watch; stop it with `stop()` or `await using`. */
export interface MembershipWatch extends AsyncDisposable {
  /** The last list reported to the callback. */
  readonly nodes: NodeInfo[];
  stop(): Promise<void>;
}

/** Options of a {@linkcode Membership}. */
export interface MembershipOptions {
  nc: NatsConnection;
  /** What this node announces; `id` is the key. */
  info: NodeInfo;
  /** Membership timeout = the bucket's TTL (default 6000 ms). */
  ttlMs?: number;
  /** Heartbeat interval (default 1000 ms); keep it well under `ttlMs`. */
  heartbeatMs?: number;
  clock: Clock;
  logger: Logger;
  /** Bucket name (default `twinmill_nodes`). */
  bucket?: string;
  /** Bucket replicas (default 1; 3 on a 3-server cluster). */
  replicas?: number;
}

const NODE_ID = /^[-\w=]+(\.[-\w=]+)*$/;

/** A node id that cannot be a KV key. */
export class InvalidNodeIdError extends Error {
  override name = "InvalidNodeIdError";
  readonly code = "invalid_node_id";
  constructor(id: string) {
    super(
      `Invalid node id "${id}": use letters, digits, "-", "_", "=" and dots between them`,
    );
  }
}

const sameInfo = (a: NodeInfo, b: NodeInfo) =>
  a.id === b.id && a.http === b.http && a.mqtt === b.mqtt && a.startedAt === b.startedAt;

/**
 * This node's heartbeat plus the cluster's live-node view. `start()` opens the bucket and
 * begins heartbeating; disposing stops heartbeats and watches *without* deleting the key (as a
 * crash would: the entry ages out); `leave()` deletes it for a graceful exit.
 */
export class Membership implements AsyncDisposable {
  readonly #o: MembershipOptions;
  #info: NodeInfo;
  #ttlMs: number;
  readonly #heartbeatMs: number;
  #kv?: Promise<KV>;
  #timer?: TimerId;
  #beating?: Promise<boolean>;
  #closed = false;
  readonly #watches = new Set<MembershipWatch>();

  constructor(opts: MembershipOptions) {
    if (!NODE_ID.test(opts.info.id)) throw new InvalidNodeIdError(opts.info.id);
    this.#o = opts;
    this.#info = { ...opts.info };
    this.#ttlMs = opts.ttlMs ?? 6000;
    this.#heartbeatMs = opts.heartbeatMs ?? 1000;
    if (!(this.#heartbeatMs > 0 && this.#heartbeatMs < this.#ttlMs)) {
      throw new RangeError(
        `Invalid heartbeat ${this.#heartbeatMs} ms: must be positive and below the TTL ${this.#ttlMs} ms`,
      );
    }
  }

  /** This node's announced info. */
  get info(): NodeInfo {
    return { ...this.#info };
  }

  /** The effective membership timeout (the bucket's TTL once opened). */
  get ttlMs(): number {
    return this.#ttlMs;
  }

  #bucket(): Promise<KV> {
    if (this.#closed) return Promise.reject(new Error("Membership is closed"));
    this.#kv ??= this.#open().catch((err) => {
      this.#kv = undefined;
      throw err;
    });
    return this.#kv;
  }

  async #open(): Promise<KV> {
    const name = this.#o.bucket ?? "twinmill_nodes";
    const kv = await new Kvm(this.#o.nc).create(name, {
      history: 1,
      ttl: this.#ttlMs,
      replicas: this.#o.replicas ?? 1,
    });
    const ttl = (await kv.status()).ttl;
    if (ttl !== this.#ttlMs) {
      this.#o.logger.warn("membership bucket exists with another TTL: using it", {
        bucket: name,
        requestedMs: this.#ttlMs,
        ttlMs: ttl,
      });
      this.#ttlMs = ttl;
    }
    if (!(ttl > 0)) {
      throw new Error(`Cannot use membership bucket "${name}": it has no TTL`);
    }
    if (this.#heartbeatMs * 2 > ttl) {
      this.#o.logger.warn("heartbeat is more than half the membership TTL: nodes may flap", {
        heartbeatMs: this.#heartbeatMs,
        ttlMs: ttl,
      });
    }
    return kv;
  }

  /** Opens the bucket, announces this node and starts heartbeating. Rejects if the store fails. */
  async start(): Promise<void> {
    const kv = await this.#bucket();
    await kv.put(this.#info.id, JSON.stringify(this.#info));
    if (this.#timer === undefined && !this.#closed) {
      this.#timer = this.#o.clock.setInterval(() => void this.beat(), this.#heartbeatMs);
    }
  }

  /** Changes what this node announces (e.g. once its listeners are bound) and beats now. */
  announce(info: Partial<Omit<NodeInfo, "id">>): Promise<boolean> {
    this.#info = { ...this.#info, ...info, id: this.#info.id };
    return this.beat();
  }

  /** One heartbeat now; false (logged) when it failed. Beats never overlap. */
  beat(): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    this.#beating ??= (async () => {
      try {
        const kv = await this.#bucket();
        await kv.put(this.#info.id, JSON.stringify(this.#info));
        return true;
      } catch (err) {
        if (!this.#closed) this.#o.logger.warn("heartbeat failed", { node: this.#info.id, err });
        return false;
      } finally {
        this.#beating = undefined;
      }
    })();
    return this.#beating;
  }

  /** The live nodes per the store, sorted by id (this node too, once it has beaten). */
  async liveNodes(): Promise<NodeInfo[]> {
    const kv = await this.#bucket();
    const keys: string[] = [];
    for await (const k of await kv.keys()) keys.push(k);
    const found = await Promise.all(keys.map(async (k) => {
      const e = await kv.get(k);
      if (e?.operation !== "PUT") return null; // expired or deleted since listed
      try {
        return e.json<NodeInfo>();
      } catch {
        this.#o.logger.warn("membership entry is not JSON: ignored", { key: k });
        return null;
      }
    }));
    return found.filter((n): n is NodeInfo => n !== null).sort((a, b) =>
      a.id < b.id ? -1 : a.id > b.id ? 1 : 0
    );
  }

  /**
   * Calls `cb` with the live nodes now, then after every change: at once for joins, leaves
   * and changed info (KV watch), within `pollMs` of the server dropping an expired node.
   * Callbacks never overlap; a throwing callback is logged.
   */
  async watch(
    cb: (change: MembershipChange) => void,
    opts: { pollMs?: number } = {},
  ): Promise<MembershipWatch> {
    const kv = await this.#bucket();
    const { clock, logger } = this.#o;
    let known = new Map<string, NodeInfo>();
    let current: NodeInfo[] = [];
    let stopped = false;
    let started = false;
    let running: Promise<void> | null = null;
    let dirty = false;

    const rescan = async () => {
      const nodes = await this.liveNodes();
      if (stopped) return;
      const next = new Map(nodes.map((n) => [n.id, n]));
      const joined = nodes.filter((n) => !known.has(n.id)).map((n) => n.id);
      const left = [...known.keys()].filter((id) => !next.has(id));
      const changed = nodes.filter((n) => known.has(n.id) && !sameInfo(known.get(n.id)!, n))
        .map((n) => n.id);
      const first = !started;
      known = next;
      current = nodes;
      started = true;
      if (first || joined.length || left.length || changed.length) {
        try {
          cb({ nodes, joined, left, changed });
        } catch (err) {
          logger.error("membership watch callback threw", { err });
        }
      }
    };
    /** Serialized rescans; a request during one schedules exactly one more. */
    const refresh = (): Promise<void> => {
      if (running) {
        dirty = true;
        return running;
      }
      running = (async () => {
        do {
          dirty = false;
          try {
            await rescan();
          } catch (err) {
            if (!stopped) logger.warn("membership rescan failed", { err });
          }
        } while (dirty && !stopped);
      })().finally(() => (running = null));
      return running;
    };

    const iter = await kv.watch({ include: KvWatchInclude.UpdatesOnly });
    await refresh();
    const events = (async () => {
      for await (const e of iter) {
        if (stopped) break;
        const old = known.get(e.key);
        if (e.operation === "PUT" && old) {
          try {
            if (sameInfo(old, e.json<NodeInfo>())) continue; // a heartbeat: nothing changed
          } catch { /* not JSON: let the rescan sort it out */ }
        }
        void refresh();
      }
    })();
    const timer = clock.setInterval(() => void refresh(), opts.pollMs ?? this.#heartbeatMs);

    const w: MembershipWatch = {
      get nodes() {
        return current;
      },
      stop: async () => {
        if (stopped) return;
        stopped = true;
        clock.clear(timer);
        iter.stop();
        await events;
        await running;
        this.#watches.delete(w);
      },
      [Symbol.asyncDispose]: () => w.stop(),
    };
    this.#watches.add(w);
    return w;
  }

  /** Graceful exit: stops heartbeating and deletes this node's entry at once. */
  async leave(): Promise<void> {
    this.#stopBeating();
    await this.#beating;
    const kv = await this.#bucket();
    await kv.delete(this.#info.id);
  }

  #stopBeating(): void {
    if (this.#timer !== undefined) this.#o.clock.clear(this.#timer);
    this.#timer = undefined;
  }

  /** Stops heartbeats and watches; the entry stays until it expires (like a crash). */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#stopBeating();
    await Promise.all([...this.#watches].map((w) => w.stop()));
    await this.#beating;
    this.#closed = true;
  }
}
