/**
 * The ownership protocol of one shard on one node, as a pure state machine (Pekko-style
 * handoff with named messages). The runtime feeds it {@linkcode ShardMessage}s — decisions of
 * the placement loop and completions of the work it did — and executes the
 * {@linkcode ShardAction}s it returns. No I/O, no timers: `transition` is a pure function.
 *
 * ```
 * unowned ─► acquiring ─► owned ─► handing_off(stopping_intake ─► draining ─► persisting ─►
 *    ▲                      │       releasing) ─► unowned
 *    └─Stopped─ fenced ◄────┴─ LeaseLost (from owned, or handing_off before releasing)
 *
 * state                        message        → next state              actions
 * unowned                      Acquire        → acquiring               acquireLease
 * acquiring                    Acquired{e}    → owned(e)                startConsumer(e)
 * acquiring                    AcquireFailed  → unowned
 * owned                        BeginHandOff   → handing_off/stopping_…  stopIntake
 * handing_off/stopping_intake  IntakeStopped  → handing_off/draining    drain
 * handing_off/draining         Drained        → handing_off/persisting  persist(e)
 * handing_off/persisting       Persisted      → handing_off/releasing   stopConsumer, releaseLease(e)
 * handing_off/releasing        Released       → unowned
 * owned                        LeaseLost      → fenced                  stopIntake, stopConsumer,
 *                                                                       dropTwins
 * handing_off (not releasing)  LeaseLost      → fenced                  stopConsumer, dropTwins
 * fenced                       Stopped        → unowned
 * no-ops: LeaseLost in unowned, fenced and handing_off/releasing; IntakeStopped in fenced
 * ```
 *
 * Rules the table encodes:
 * - **Epochs only grow.** `Acquired{epoch}` must carry an epoch above every epoch this shard
 *   had on this node (`stale_epoch` otherwise). A takeover after a crash gets the old epoch + 1
 *   from the lease store; actions that write (`startConsumer`, `persist`, `releaseLease`) carry
 *   the epoch so stores can reject writes of an older owner.
 * - **Graceful handoff** (join-triggered rebalance, leave, or a failed start) is
 *   `BeginHandOff → IntakeStopped → Drained → Persisted → Released`: no new messages are taken,
 *   the ones in flight are applied and acked, the twins are persisted, and only then is the
 *   lease released, so the next owner starts from the persisted state. `Drained{complete:
 *   false}` (drain timed out) still continues: unacked messages are redelivered to the next
 *   owner, and twins ignore redeliveries by sequence.
 * - **Fencing.** `LeaseLost` (renew failed, or self-fenced on the local clock) while owned or
 *   handing off → `fenced`: intake and consumer stop and the twins are dropped *unpersisted*,
 *   because another node may already own the shard. `Stopped` reports that done. Once the twins
 *   are persisted (`releasing`), losing the lease is what the handoff wanted anyway: ignored.
 *   A repeated `LeaseLost` in `fenced` or `unowned` is a no-op (timer and renew may both see it).
 * - **Everything else is rejected**: an invalid message returns `{ ok: false, error }` with the
 *   state unchanged and no actions — it never throws. Late completions of an aborted handoff
 *   (e.g. `Persisted` after `LeaseLost`) land here; the runtime logs and drops them.
 *
 * Runtime contract: execute a transition's actions in order, each idempotent, and answer each
 * with its message — `acquireLease` → `Acquired`/`AcquireFailed`, `stopIntake` →
 * `IntakeStopped`, `drain` → `Drained`, `persist` → `Persisted`, `releaseLease` → `Released`
 * (also when the lease was already gone), `dropTwins` → `Stopped`; `startConsumer` and
 * `stopConsumer` have no answer (a failed start is answered with `BeginHandOff{start_failed}`).
 * `fenced` therefore accepts `IntakeStopped` as a no-op. Only `owned` serves requests
 * ({@linkcode isServing}).
 *
 * @example
 * ```ts
 * let s = initialShardState();
 * let r = transition(s, { type: "Acquire" }); // actions: [{ type: "acquireLease" }]
 * r = transition(r.state, { type: "Acquired", epoch: 4 }); // [{ type: "startConsumer", epoch: 4 }]
 * r = transition(r.state, { type: "BeginHandOff", reason: "rebalance" }); // [{ type: "stopIntake" }]
 * ```
 * @module
 */

/** Why a shard is handed off. */
export type HandOffReason = "rebalance" | "leave" | "start_failed";

/** The steps of a graceful handoff, in order. */
export type HandOffStep = "stopping_intake" | "draining" | "persisting" | "releasing";

/** A shard's ownership state on this node. */
export type ShardState =
  /** Not held here. `lastEpoch`: the highest epoch this shard had here (0 = never). */
  | { kind: "unowned"; lastEpoch: number }
  /** Lease requested. */
  | { kind: "acquiring"; lastEpoch: number }
  /** Lease held, consumer running, requests served. */
  | { kind: "owned"; epoch: number }
  /** Graceful handoff in progress; `drainedAll` = false when the drain timed out. */
  | {
    kind: "handing_off";
    epoch: number;
    reason: HandOffReason;
    step: HandOffStep;
    drainedAll?: boolean;
  }
  /** Lease lost: stopping and dropping everything of the shard. */
  | { kind: "fenced"; epoch: number };

/** The kinds of {@linkcode ShardState}. */
export type ShardStateKind = ShardState["kind"];

/** Messages to the machine: decisions of the placement loop and completions of actions. */
export type ShardMessage =
  /** Placement wants this shard here. */
  | { type: "Acquire" }
  /** The lease was acquired with this epoch. */
  | { type: "Acquired"; epoch: number }
  /** The lease is held by another node (or the store failed). */
  | { type: "AcquireFailed"; reason?: string }
  /** Placement (or a leave, or a failed start) wants this shard gone from here. */
  | { type: "BeginHandOff"; reason: HandOffReason }
  /** No new messages are taken for the shard. */
  | { type: "IntakeStopped" }
  /** Messages in flight are applied and acked; `complete: false` = drain timed out. */
  | { type: "Drained"; complete: boolean }
  /** The shard's twins are persisted and passivated. */
  | { type: "Persisted" }
  /** The release of the lease finished (also when it was already gone). */
  | { type: "Released" }
  /** The lease is lost: renew failed or its local validity ran out. */
  | { type: "LeaseLost" }
  /** Fenced shard: consumer stopped and twins dropped. */
  | { type: "Stopped" };

/** The types of {@linkcode ShardMessage}. */
export type ShardMessageType = ShardMessage["type"];

/** Work the runtime must do. Every action is idempotent. */
export type ShardAction =
  /** Try to take the lease; answer `Acquired{epoch}` or `AcquireFailed`. */
  | { type: "acquireLease" }
  /** Start consuming and serving the shard as owner of `epoch`. */
  | { type: "startConsumer"; epoch: number }
  /** Stop taking new messages and requests; answer `IntakeStopped`. */
  | { type: "stopIntake" }
  /** Wait until the messages in flight are applied and acked; answer `Drained`. */
  | { type: "drain" }
  /** Persist and passivate the shard's twins, fenced by `epoch`; answer `Persisted`. */
  | { type: "persist"; epoch: number }
  /** Close the shard's consumer. */
  | { type: "stopConsumer" }
  /** Release the lease of `epoch`; answer `Released`. */
  | { type: "releaseLease"; epoch: number }
  /** Drop the shard's twins from memory without persisting; answer `Stopped` (with stopConsumer). */
  | { type: "dropTwins" };

/** Stable codes of {@linkcode ShardTransitionError}. */
export type ShardTransitionCode = "invalid_transition" | "stale_epoch";

/** A message that is not valid in the current state. Returned, never thrown. */
export class ShardTransitionError extends Error {
  override name = "ShardTransitionError";
  constructor(
    /** `invalid_transition` or `stale_epoch`. */
    readonly code: ShardTransitionCode,
    /** The state the message was rejected in. */
    readonly state: ShardState,
    /** The rejected message. */
    readonly msg: ShardMessage,
    message: string,
  ) {
    super(message);
  }
}

/** The result of {@linkcode transition}: the next state and what to do, or why not. */
export type TransitionResult =
  | { ok: true; state: ShardState; actions: ShardAction[] }
  | { ok: false; state: ShardState; actions: []; error: ShardTransitionError };

/** The state of a shard this node never held (or held up to `lastEpoch`). */
export function initialShardState(lastEpoch = 0): ShardState {
  return { kind: "unowned", lastEpoch };
}

/** True only when the shard's twins may run and answer here. */
export function isServing(state: ShardState): boolean {
  return state.kind === "owned";
}

/** True while this node believes it holds the shard's lease (and must keep renewing it). */
export function holdsLease(state: ShardState): boolean {
  return state.kind === "owned" || state.kind === "handing_off";
}

/** A short description for logs, e.g. `handing_off/draining@3`. */
export function describeState(s: ShardState): string {
  switch (s.kind) {
    case "unowned":
    case "acquiring":
      return `${s.kind}(last ${s.lastEpoch})`;
    case "handing_off":
      return `handing_off/${s.step}@${s.epoch}`;
    default:
      return `${s.kind}@${s.epoch}`;
  }
}

const ok = (state: ShardState, actions: ShardAction[] = []): TransitionResult => ({
  ok: true,
  state,
  actions,
});

function reject(
  state: ShardState,
  msg: ShardMessage,
  code: ShardTransitionCode = "invalid_transition",
  why?: string,
): TransitionResult {
  const message = why ??
    `Cannot apply ${msg.type} to shard in state ${describeState(state)}: not a valid transition`;
  return {
    ok: false,
    state,
    actions: [],
    error: new ShardTransitionError(code, state, msg, message),
  };
}

const FENCE_FROM_OWNED: ShardAction[] = [
  { type: "stopIntake" },
  { type: "stopConsumer" },
  { type: "dropTwins" },
];
/** stopIntake was already issued by BeginHandOff. */
const FENCE_FROM_HANDOFF: ShardAction[] = [{ type: "stopConsumer" }, { type: "dropTwins" }];

/**
 * The next state of a shard and the actions to run, given one message. Pure and total:
 * an invalid message yields `{ ok: false, error }` with the state unchanged.
 */
export function transition(state: ShardState, msg: ShardMessage): TransitionResult {
  switch (state.kind) {
    case "unowned":
      if (msg.type === "Acquire") {
        return ok({ kind: "acquiring", lastEpoch: state.lastEpoch }, [{ type: "acquireLease" }]);
      }
      if (msg.type === "LeaseLost") return ok(state); // duplicate report after fencing
      return reject(state, msg);

    case "acquiring":
      if (msg.type === "Acquired") {
        if (!Number.isSafeInteger(msg.epoch) || msg.epoch <= state.lastEpoch) {
          return reject(
            state,
            msg,
            "stale_epoch",
            `Cannot own shard at epoch ${msg.epoch}: it already had epoch ${state.lastEpoch} here`,
          );
        }
        return ok({ kind: "owned", epoch: msg.epoch }, [{
          type: "startConsumer",
          epoch: msg.epoch,
        }]);
      }
      if (msg.type === "AcquireFailed") return ok({ kind: "unowned", lastEpoch: state.lastEpoch });
      return reject(state, msg);

    case "owned":
      if (msg.type === "BeginHandOff") {
        return ok({
          kind: "handing_off",
          epoch: state.epoch,
          reason: msg.reason,
          step: "stopping_intake",
        }, [{ type: "stopIntake" }]);
      }
      if (msg.type === "LeaseLost") {
        return ok({ kind: "fenced", epoch: state.epoch }, FENCE_FROM_OWNED);
      }
      return reject(state, msg);

    case "handing_off":
      return handingOff(state, msg);

    case "fenced":
      if (msg.type === "Stopped") return ok({ kind: "unowned", lastEpoch: state.epoch });
      // IntakeStopped answers the fence's own stopIntake (or the aborted handoff's)
      if (msg.type === "LeaseLost" || msg.type === "IntakeStopped") return ok(state);
      return reject(state, msg);
  }
}

function handingOff(
  state: Extract<ShardState, { kind: "handing_off" }>,
  msg: ShardMessage,
): TransitionResult {
  if (msg.type === "LeaseLost") {
    // persisted already: the lease going away is what the handoff wanted
    if (state.step === "releasing") return ok(state);
    return ok({ kind: "fenced", epoch: state.epoch }, FENCE_FROM_HANDOFF);
  }
  const { epoch } = state;
  switch (state.step) {
    case "stopping_intake":
      if (msg.type !== "IntakeStopped") break;
      return ok({ ...state, step: "draining" }, [{ type: "drain" }]);
    case "draining":
      if (msg.type !== "Drained") break;
      return ok({ ...state, step: "persisting", drainedAll: msg.complete }, [{
        type: "persist",
        epoch,
      }]);
    case "persisting":
      if (msg.type !== "Persisted") break;
      return ok({ ...state, step: "releasing" }, [
        { type: "stopConsumer" },
        { type: "releaseLease", epoch },
      ]);
    case "releasing":
      if (msg.type !== "Released") break;
      return ok({ kind: "unowned", lastEpoch: epoch });
  }
  return reject(state, msg);
}
