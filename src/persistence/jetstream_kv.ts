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
 * decodes and sorts the ids, then loads one page: O(n) in the number of twins per page. That is
 * fine for loading one shard's twins at activation; not meant for paging a huge fleet.
 *
 * Reads go through the stream leader (`allow_direct: false`), never a replica that may lag:
 * a shard's new owner must see what the previous owner persisted before it released the lease.
 *
 * Values must fit one NATS message (1 MiB by default): a snapshot over 900 KB (or the server's
 * `max_payload`, when smaller) fails with {@linkcode SnapshotTooLargeError}.
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import type { TwinRecord } from "../../actors/twin.ts";
import { TwinmillError } from "../errors.ts";
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
}

/** A snapshot store that also reports each twin's KV revision. */
export interface JetStreamSnapshotStore extends SnapshotStore {
  /** The KV revision of the twin's stored snapshot, or null if there is none. */
  revision(id: string): Promise<number | null>;
}

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

  async function load(id: string): Promise<TwinRecord | null> {
    const e = await kv.get(twinKey(id));
    return e?.operation === "PUT" ? e.json<TwinRecord>() : null;
  }

  return {
    load,
    async saveMany(records) {
      const limit = Math.min(MAX_SNAPSHOT_BYTES, nc.info?.max_payload ?? MAX_SNAPSHOT_BYTES);
      const values = records.map((r) => {
        const bytes = enc.encode(JSON.stringify(r));
        if (bytes.byteLength > limit) {
          throw new SnapshotTooLargeError(r.state.id, bytes.byteLength, limit);
        }
        return [twinKey(r.state.id), bytes] as const;
      });
      await Promise.all(values.map(([key, bytes]) => kv.put(key, bytes)));
    },
    async list(after, limit) {
      const ids: string[] = [];
      for await (const key of await kv.keys()) {
        const id = twinIdOfKey(key);
        if (after === undefined || id > after) ids.push(id);
      }
      ids.sort();
      const page = await Promise.all(ids.slice(0, limit).map(load));
      return page.filter((r) => r !== null);
    },
    async revision(id) {
      const e = await kv.get(twinKey(id));
      return e?.operation === "PUT" ? e.revision : null;
    },
  };
}
