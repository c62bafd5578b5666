/**
 * JetStream KV snapshot store (cluster mode): one bucket, one key per twin, the value is the
 * record's JSON.
 *
 * Keys: KV keys allow only `A-Za-z0-9_-/=.`, and `.` separates subject tokens (a key may not
 * start or end with one, nor hold two in a row). Twin ids may contain `:` and any use of `.`,
 * so ids are escaped: every UTF-8 byte outside `A-Za-z0-9_-` becomes `=XX` (upper-case hex).
 * `press-7` stays `press-7`, `line.3:press` becomes `line=2E3=3Apress`. The encoding is
 * reversible and keeps ordinary ids readable in `nats kv ls`.
 *
 * Listing: KV has no ordered range scan, so `list(after, limit)` reads every key of the bucket,
 * decodes and sorts the ids, then loads one page: O(n) in the number of twins per page. A whole
 * walk (`all()`: start-up, a new owner's scan) reads the keys once, then the records in batches
 * (it once paged through `list`, reading every key per page: quadratic, minutes at 100,000 twins).
 *
 * Reads go through the stream leader (`allow_direct: false`), never a replica that may lag:
 * a shard's new owner must see what the previous owner persisted before it released the lease.
 *
 * Values must fit one NATS message (1 MiB by default): a snapshot over 900 KB (or the server's
 * `max_payload`, when smaller) fails with {@linkcode SnapshotTooLargeError}.
 *
 * **Epoch fencing** (with {@linkcode SnapshotFencing}, cluster mode): a snapshot carries the
 * epoch of its writer's shard lease (`epoch` beside the record's fields; none, from a node
 * before fencing, reads as 0). Every write is a compare-and-set on the key's revision that this
 * node last loaded or wrote (kept in memory per twin, so a write is still one request), or a
 * create for a twin with no snapshot. When the revision moved, the snapshot is read again: an
 * epoch above the writer's means a newer owner wrote — this node's lease is gone and its shard
 * is fenced (`fenced`), the write refused; an epoch not above it is a stale owner's write that
 * landed after this node loaded the twin (or this node's own write whose answer was lost), and
 * it is overwritten with the record being written (`overwrote`). A load that finds an epoch above
 * the loader's fences the same way. So a node paused between its lease check and its write can
 * no longer leave its snapshot over the new owner's: it lands only before the new owner's first
 * write of the twin, which then replaces it.
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { type KV, type KvEntry, Kvm } from "@nats-io/kv";
import { JetStreamApiError } from "@nats-io/jetstream";
import type { TwinRecord } from "../../actors/twin.ts";
import { TwinmillError, UnavailableError } from "../errors.ts";
import type { SnapshotStore } from "./port.ts";

/** Largest snapshot stored, in bytes of JSON (the server's `max_payload` may lower it). */
export const MAX_SNAPSHOT_BYTES = 900_000;

/** A twin's snapshot is too large to persist as one KV value. */
export class SnapshotTooLargeError extends TwinmillError {
  override name = "SnapshotTooLargeError";
  constructor(
    readonly id: string,
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(
      "snapshot_too_large",
      413,
      `Cannot persist twin "${id}": snapshot is ${bytes} bytes, over the ${limit / 1000} KB limit`,
    );
  }
}

/** Options for {@linkcode jetstreamSnapshotStore}. */
export interface JetStreamSnapshotOptions {
  /** KV bucket name (default `tm_twins`). */
  bucket?: string;
  /** Replicas of the bucket when it is created: 1, 3 or 5 (default 1). */
  replicas?: number;
  /** Fence writes by the writer's shard epoch (cluster mode); without it, writes are puts. */
  fencing?: SnapshotFencing;
}

/** What an epoch-fenced store asks of, and tells, the node it runs on. */
export interface SnapshotFencing {
  /** The epoch of the lease this node holds on twin `id`'s shard, or undefined if none. */
  epochOf(id: string): number | undefined;
  /** A snapshot of twin `id` from a newer owner (epoch `stored` > `own`): fence the shard. */
  fenced(id: string, stored: number, own: number): void;
  /** A stale owner's snapshot of twin `id` (epoch `stored` ≤ `own`) was overwritten. */
  overwrote?(id: string, stored: number, own: number): void;
}

/** A snapshot store that also reports each twin's KV revision. */
export interface JetStreamSnapshotStore extends SnapshotStore {
  /** The KV revision of the twin's stored snapshot, or null if there is none. */
  revision(id: string): Promise<number | null>;
  /** Forget the revisions kept of the matching twins (their shard left this node). */
  forgetWhere(pred: (id: string) => boolean): void;
}

/** "wrong last sequence": the key's revision is not the one a compare-and-set expected. */
const WRONG_LAST_SEQUENCE = 10071;
/** Compare-and-set attempts of one write that keep finding a stale owner's newer write. */
const CAS_ATTEMPTS = 4;

/** A stored snapshot with the epoch of its writer (0: written before fencing). */
type Stored = TwinRecord & { epoch?: number };

const SAFE = /^[A-Za-z0-9_-]$/;
const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

/** The KV key for a twin id: each UTF-8 byte outside `A-Za-z0-9_-` becomes `=XX`. */
export function twinKey(id: string): string {
  if (id === "") throw new Error("Cannot store a twin with an empty id");
  let key = "";
  for (const b of enc.encode(id)) {
    const c = String.fromCharCode(b);
    key += SAFE.test(c) ? c : `=${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return key;
}

/** The twin id a {@linkcode twinKey} was made from. */
export function twinIdOfKey(key: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < key.length; i++) {
    if (key[i] !== "=") {
      bytes.push(key.charCodeAt(i));
      continue;
    }
    const hex = key.slice(i + 1, i + 3);
    if (!/^[0-9A-F]{2}$/.test(hex)) throw new Error(`Cannot decode twin key "${key}"`);
    bytes.push(parseInt(hex, 16));
    i += 2;
  }
  return dec.decode(new Uint8Array(bytes));
}

/**
 * Open (creating it if missing) the snapshot bucket on `nc`. The store does not own the
 * connection: drain or close it when done.
 *
 * @example
 * ```ts
 * import { connect } from "@nats-io/transport-node";
 * import { emptyTwin } from "../../actors/twin.ts";
 * import { jetstreamSnapshotStore } from "./jetstream_kv.ts";
 *
 * const nc = await connect({ servers: "nats://127.0.0.1:4222" });
 * const store = await jetstreamSnapshotStore(nc, { replicas: 3 });
 * await store.saveMany([emptyTwin("press:7", Date.now())]);
 * await nc.drain();
 * ```
 */
export async function jetstreamSnapshotStore(
  nc: NatsConnection,
  opts: JetStreamSnapshotOptions = {},
): Promise<JetStreamSnapshotStore> {
  const kv = await new Kvm(nc).create(opts.bucket ?? "tm_twins", {
    replicas: opts.replicas ?? 1,
    history: 1,
    allow_direct: false,
  });
  const fencing = opts.fencing;
  /** With fencing: the revision of each twin's snapshot last loaded or written here (0: none). */
  const revs = new Map<string, number>();
  const writer = fencing && casWriter(kv, fencing, revs);

  async function load(id: string): Promise<TwinRecord | null> {
    const e = await kv.get(twinKey(id));
    const s = parse(e);
    const own = fencing?.epochOf(id);
    if (own !== undefined) {
      if (s && s.epoch > own) fence(fencing!, revs, id, s.epoch, own);
      revs.set(id, e?.revision ?? 0);
    }
    return s?.rec ?? null;
  }

  /** Every twin id of the bucket, sorted (reads every key: KV has no ordered range scan). */
  async function sortedIds(): Promise<string[]> {
    const ids: string[] = [];
    for await (const key of await kv.keys()) ids.push(twinIdOfKey(key));
    return ids.sort();
  }

  /** The records of `ids`, read at once, without the fencing checks (not an owner's load). */
  async function read(ids: string[]): Promise<TwinRecord[]> {
    const recs = await Promise.all(ids.map(async (id) => parse(await kv.get(twinKey(id)))?.rec));
    return recs.filter((r) => r !== undefined);
  }

  return {
    load,
    async saveMany(records) {
      const limit = Math.min(MAX_SNAPSHOT_BYTES, nc.info?.max_payload ?? MAX_SNAPSHOT_BYTES);
      // every value is made (and checked) before anything of the batch is written
      const values = records.map((r) => {
        const id = r.state.id;
        const epoch = fencing?.epochOf(id);
        if (fencing && epoch === undefined) throw moved(id);
        const bytes = enc.encode(JSON.stringify(epoch === undefined ? r : { ...r, epoch }));
        if (bytes.byteLength > limit) throw new SnapshotTooLargeError(id, bytes.byteLength, limit);
        return { id, epoch: epoch ?? 0, bytes };
      });
      const results = await Promise.allSettled(
        values.map((v) => writer ? writer(v) : kv.put(twinKey(v.id), v.bytes)),
      );
      const failed = results.find((r) => r.status === "rejected");
      if (failed) throw failed.reason;
    },
    async list(after, limit) {
      const ids = (await sortedIds()).filter((id) => after === undefined || id > after);
      return await read(ids.slice(0, limit));
    },
    async *all() {
      const ids = await sortedIds(); // once for the whole walk, not once per page
      for (let i = 0; i < ids.length; i += WALK_BATCH) {
        yield* await read(ids.slice(i, i + WALK_BATCH));
      }
    },
    async revision(id) {
      const e = await kv.get(twinKey(id));
      return e?.operation === "PUT" ? e.revision : null;
    },
    forget(id) {
      revs.delete(id);
    },
    forgetWhere(pred) {
      for (const id of revs.keys()) if (pred(id)) revs.delete(id);
    },
  };
}

/** Records read at once by a walk ({@linkcode SnapshotStore.all}): requests in flight. */
const WALK_BATCH = 256;

/** The record and its writer's epoch of a KV entry, or null (no key, or a delete marker). */
function parse(e: KvEntry | null): { rec: TwinRecord; epoch: number } | null {
  if (e?.operation !== "PUT") return null;
  const { epoch = 0, ...rec } = e.json<Stored>();
  return { rec, epoch };
}

/** The error of a write or load of a twin whose shard this node no longer holds. */
function moved(id: string): UnavailableError {
  return new UnavailableError("shard_moved", `Twin "${id}" moved to another node`);
}

/** A newer owner's snapshot was found: fence, and throw. */
function fence(
  f: SnapshotFencing,
  revs: Map<string, number>,
  id: string,
  stored: number,
  own: number,
): never {
  revs.delete(id);
  f.fenced(id, stored, own);
  throw moved(id);
}

/**
 * The epoch-fenced write of one snapshot: a compare-and-set on the revision kept for it (read
 * first when none is kept); when the revision moved, the stored epoch decides (module doc).
 */
function casWriter(kv: KV, f: SnapshotFencing, revs: Map<string, number>) {
  return async (v: { id: string; epoch: number; bytes: Uint8Array }): Promise<void> => {
    const key = twinKey(v.id);
    let rev = revs.get(v.id);
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      if (rev !== undefined) {
        try {
          revs.set(v.id, await kv.put(key, v.bytes, { previousSeq: rev }));
          return;
        } catch (err) {
          if (!(err instanceof JetStreamApiError && err.code === WRONG_LAST_SEQUENCE)) throw err;
        }
      }
      const e = await kv.get(key);
      const s = parse(e);
      if (s && s.epoch > v.epoch) fence(f, revs, v.id, s.epoch, v.epoch);
      // an equal epoch is this node's own write whose answer was lost (a timeout)
      if (s && rev !== undefined && s.epoch < v.epoch) f.overwrote?.(v.id, s.epoch, v.epoch);
      rev = e?.revision ?? 0;
    }
    throw new Error(`Cannot persist twin "${v.id}": its snapshot kept changing meanwhile`);
  };
}
