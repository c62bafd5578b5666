/**
 * A small actor runtime: one bounded mailbox per actor, one message at a time per actor, many
 * actors concurrently; activation on first message, passivation after idle time, supervision.
 *
 * It knows nothing of twins: a {@linkcode Behavior} supplies load, receive and passivate.
 * @module
 */
import type { Clock, TimerId } from "./clock.ts";
import type { Logger } from "../obs/log.ts";
import { MailboxFullError, UnavailableError } from "../errors.ts";

/** What an actor does. */
export interface Behavior<S, M, R> {
  /** Load the actor's state: on activation, and again after a handler threw (restart). */
  load(id: string): Promise<S>;
  /** Handle one message. Throwing restarts the actor from `load`. */
  receive(id: string, state: S, msg: M): { state: S; reply: R } | Promise<{ state: S; reply: R }>;
  /** Persist whatever must survive before the actor is dropped from memory. */
  passivate(id: string, state: S): Promise<void>;
}

/** Hooks for metrics. */
export interface ActorHooks {
  activated?(): void;
  passivated?(): void;
  failed?(): void;
  mailboxFull?(): void;
}

/** Options of an {@linkcode ActorSystem}. */
export interface ActorSystemOptions<S, M, R> {
  behavior: Behavior<S, M, R>;
  clock: Clock;
  logger: Logger;
  /** Idle time before passivation (ms). Default 10 min. */
  idleMs?: number;
  /** Mailbox capacity per actor. Default 1000. */
  mailboxSize?: number;
  hooks?: ActorHooks;
}

/** How long a shard's hand-off or drop waits for its actors' running mailboxes (ms). */
const BUSY_WAIT_MS = 10_000;
/** How long closing waits for running mailboxes (ms). */
const CLOSE_WAIT_MS = 5_000;

interface Envelope<M, R> {
  msg: M;
  resolve(r: R): void;
  reject(e: unknown): void;
}

/**
 * One resident actor. Kept small, as a node holds a million of them: no mailbox array while
 * the mailbox is empty, and its last activity as a small integer.
 */
interface Cell<S, M, R> {
  id: string;
  state?: S;
  loaded: boolean;
  /**
   * Messages waiting, FIFO, null when none. The first `mailboxSize` are the mailbox; past it,
   * senders waiting for room (`wait: true`), who enter it in order as it drains.
   */
  mail: Envelope<M, R>[] | null;
  running: boolean;
  passivating: boolean;
  /** Last activity, ms since the system started (a small integer, not a boxed number). */
  lastActive: number;
}

/** Messages waiting for actor `c` (its mailbox and blocked senders). */
function depth(c: Cell<unknown, unknown, unknown>): number {
  return c.mail?.length ?? 0;
}

/**
 * Hosts actors by id.
 *
 * @example
 * ```ts
 * const sys = new ActorSystem({ behavior, clock: systemClock, logger });
 * const reply = await sys.send("press-7", { type: "get" });
 * ```
 */
export class ActorSystem<S, M, R> {
  readonly #cells = new Map<string, Cell<S, M, R>>();
  readonly #b: Behavior<S, M, R>;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #idleMs: number;
  readonly #mailboxSize: number;
  readonly #hooks: ActorHooks;
  readonly #sweeper: TimerId;
  /** The clock's time when the system started: cells keep their activity relative to it. */
  readonly #epoch: number;
  #closed = false;
  /** Waits for mailboxes to stop running, re-checked each time one stops. */
  readonly #onStop = new Set<() => void>();

  constructor(opts: ActorSystemOptions<S, M, R>) {
    this.#b = opts.behavior;
    this.#clock = opts.clock;
    this.#log = opts.logger;
    this.#idleMs = opts.idleMs ?? 600_000;
    this.#mailboxSize = opts.mailboxSize ?? 1000;
    this.#hooks = opts.hooks ?? {};
    this.#epoch = this.#clock.now();
    const every = Math.max(10, Math.min(60_000, Math.floor(this.#idleMs / 4)));
    this.#sweeper = this.#clock.setInterval(() => void this.sweep(), every);
  }

  /** Number of resident actors. */
  get size(): number {
    return this.#cells.size;
  }

  /** The in-memory state of a resident, loaded actor (no activation). */
  peek(id: string): S | undefined {
    const c = this.#cells.get(id);
    return c?.loaded ? c.state : undefined;
  }

  /** Messages waiting in every mailbox (queued and blocked senders). */
  get queued(): number {
    let n = 0;
    for (const c of this.#cells.values()) n += depth(c);
    return n;
  }

  /** A resident actor's mailbox depth (queued and waiting senders) and activity; null if none. */
  info(id: string): { depth: number; lastActive: number } | null {
    const c = this.#cells.get(id);
    return c ? { depth: depth(c), lastActive: c.lastActive + this.#epoch } : null;
  }

  /** Ids of resident actors. */
  ids(): IterableIterator<string> {
    return this.#cells.keys();
  }

  /**
   * Deliver a message and wait for the reply. A full mailbox rejects with
   * {@linkcode MailboxFullError}, or with `wait: true` the sender waits (FIFO) for room.
   */
  send(id: string, msg: M, opts: { wait?: boolean } = {}): Promise<R> {
    if (this.#closed) {
      return Promise.reject(new UnavailableError("shutting_down", "Node is shutting down"));
    }
    let c = this.#cells.get(id);
    if (!c) {
      c = {
        id,
        state: undefined, // present from the start: set later, it would take a property array
        loaded: false,
        mail: null,
        running: false,
        passivating: false,
        lastActive: this.#clock.now() - this.#epoch,
      };
      this.#cells.set(id, c);
    }
    const cell = c;
    return new Promise<R>((resolve, reject) => {
      if (depth(cell) >= this.#mailboxSize && !opts.wait) {
        this.#hooks.mailboxFull?.();
        reject(new MailboxFullError(id));
        return;
      }
      (cell.mail ??= []).push({ msg, resolve, reject });
      if (!cell.running && !cell.passivating) void this.#run(cell);
    });
  }

  async #run(c: Cell<S, M, R>): Promise<void> {
    c.running = true;
    try {
      if (!c.loaded) {
        try {
          c.state = await this.#b.load(c.id);
          c.loaded = true;
          this.#hooks.activated?.();
        } catch (err) {
          this.#log.error("actor activation failed", { actor: c.id, err });
          const all = c.mail ?? [];
          c.mail = null;
          this.#cells.delete(c.id);
          for (const e of all) e.reject(err);
          return;
        }
      }
      while (c.mail !== null) {
        const env = c.mail.shift()!;
        if (c.mail.length === 0) c.mail = null;
        try {
          const r = await this.#b.receive(c.id, c.state as S, env.msg);
          c.state = r.state;
          env.resolve(r.reply);
        } catch (err) {
          this.#hooks.failed?.();
          this.#log.error("actor handler failed; restarting from persisted state", {
            actor: c.id,
            err,
          });
          env.reject(err);
          try {
            c.state = await this.#b.load(c.id);
          } catch (loadErr) {
            this.#log.error("actor restart failed; deactivating", { actor: c.id, err: loadErr });
            c.loaded = false;
          }
          if (!c.loaded) break;
        }
      }
    } finally {
      c.running = false;
      c.lastActive = this.#clock.now() - this.#epoch;
      if (c.mail !== null && !c.passivating) void this.#run(c);
      else if (this.#onStop.size > 0) { for (const check of [...this.#onStop]) check(); }
    }
  }

  /**
   * Resolves true once `done` holds for every cell (checked now and whenever a mailbox stops
   * running), or false after `ms` on the clock.
   */
  #until(cells: Cell<S, M, R>[], done: (c: Cell<S, M, R>) => boolean, ms: number) {
    if (cells.every(done)) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const finish = (ok: boolean) => {
        this.#onStop.delete(check);
        this.#clock.clear(timer);
        resolve(ok);
      };
      const check = () => cells.every(done) && finish(true);
      const timer = this.#clock.setTimeout(() => finish(false), ms);
      this.#onStop.add(check);
    });
  }

  /** Passivate every actor idle for at least the idle time. Returns how many. */
  async sweep(): Promise<number> {
    const now = this.#clock.now() - this.#epoch;
    const idle: Cell<S, M, R>[] = [];
    for (const c of this.#cells.values()) {
      if (!c.running && !c.passivating && c.mail === null && now - c.lastActive >= this.#idleMs) {
        idle.push(c);
      }
    }
    await Promise.all(idle.map((c) => this.#passivate(c)));
    return idle.length;
  }

  async #passivate(c: Cell<S, M, R>): Promise<void> {
    c.passivating = true;
    try {
      if (c.loaded) await this.#b.passivate(c.id, c.state as S);
      if (c.mail === null) {
        this.#cells.delete(c.id);
        this.#hooks.passivated?.();
      }
    } catch (err) {
      this.#log.error("actor passivation failed; keeping it resident", { actor: c.id, err });
    } finally {
      c.passivating = false;
      if (c.mail !== null && !c.running && this.#cells.has(c.id)) void this.#run(c);
    }
  }

  /**
   * Passivate every resident actor whose id matches, once its mailbox is empty (used when a
   * shard is handed off). Waits 10 s at most: past that, the busy ones are passivated anyway,
   * with a warning. Returns how many.
   */
  async passivateWhere(pred: (id: string) => boolean): Promise<number> {
    const cells = [...this.#cells.values()].filter((c) => pred(c.id));
    const idle = (c: Cell<S, M, R>) => !c.running && c.mail === null;
    if (!(await this.#until(cells, idle, BUSY_WAIT_MS))) {
      const busy = cells.filter((c) => !idle(c));
      this.#log.warn("actors still busy after 10 s; passivating them anyway", {
        actors: busy.length,
        first: busy[0]?.id,
      });
    }
    await Promise.all(cells.map((c) => this.#passivate(c)));
    return cells.length;
  }

  /**
   * Drop the matching actors from memory WITHOUT persisting (their state is no longer ours,
   * e.g. a lost lease). Queued messages are refused with `refusal(id)`. Returns how many.
   */
  async dropWhere(
    pred: (id: string) => boolean,
    refusal: (id: string) => unknown,
  ): Promise<number> {
    const cells = [...this.#cells.values()].filter((c) => pred(c.id));
    await this.#until(cells, (c) => !c.running, BUSY_WAIT_MS);
    for (const c of cells) {
      this.#cells.delete(c.id);
      const err = refusal(c.id);
      const mail = c.mail ?? [];
      c.mail = null;
      for (const e of mail) e.reject(err);
      if (c.loaded) this.#hooks.passivated?.();
    }
    return cells.length;
  }

  /** Stop the sweeper, wait for running mailboxes to drain, passivate everyone. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#clock.clear(this.#sweeper);
    await this.#until([...this.#cells.values()], (c) => !c.running, CLOSE_WAIT_MS);
    await Promise.all([...this.#cells.values()].map((c) => this.#passivate(c)));
  }
}
