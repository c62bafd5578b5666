/**
 * The persistence port: twin snapshots, the durable inbound log and its retirer. Adapters: in-memory (tests)
 * and Deno KV (single node); the cluster adds JetStream KV. All pass
 * `tests/conformance/persistence_conformance.ts`.
 * @module
 */
import type { TwinRecord } from "../../actors/twin.ts";
import type { UserProperties } from "../../actors/user_properties.ts";

/** One durable inbound device message. */
export interface LogEntry {
  /** Node-wide sequence, strictly increasing in the order the broker accepted messages. */
  seq: number;
  topic: string;
  payload: Uint8Array;
  /** Arrival time (ms since epoch). */
  at: number;
  /** The message's key for its twin, when it may be redelivered (`TwinMessage.key`). */
  key?: number;
  /** The message's MQTT 5 user properties, if it had any (within their limits). */
  props?: UserProperties;
}

/** Twin snapshots keyed by twin id. */
export interface SnapshotStore {
  load(id: string): Promise<TwinRecord | null>;
  /** Persist all records; resolves when they are durable. */
  saveMany(records: TwinRecord[]): Promise<void>;
  /** Records with id > `after`, in id order, at most `limit`. */
  list(after: string | undefined, limit: number): Promise<TwinRecord[]>;
  /** Twin `id` left memory: drop what the store keeps of it (an epoch-fenced store's revision). */
  forget?(id: string): void;
  /**
   * Every record, in id order, for a whole walk (start-up, a new owner's scan): given by a store
   * whose `list` cannot seek, so that a walk reads the keys once instead of once per page.
   */
  all?(): AsyncIterable<TwinRecord>;
}

/**
 * What the twin host needs of an inbound log: retire entries whose effects are persisted. The
 * cluster's retirer acknowledges JetStream messages; on one node it is the durable log.
 */
export interface LogRetirer {
  /** Remove entries whose effects are persisted elsewhere. */
  retire(seqs: number[]): Promise<void>;
}

/** The durable inbound log, with a persisted sequence high-water mark. */
export interface InboundLog extends LogRetirer {
  /** Append entries (sequences increasing); resolves when they are durable. */
  append(entries: LogEntry[]): Promise<void>;
  /** Every unretired entry, in sequence order. */
  replay(): AsyncIterable<LogEntry>;
  /** The highest sequence ever appended (0 if none), even if retired. */
  lastSeq(): Promise<number>;
}

/** A store with both parts; disposing closes it. */
export interface Persistence extends AsyncDisposable {
  snapshots: SnapshotStore;
  log: InboundLog;
}

/**
 * What the twin host persists to: snapshots, and the log it retires entries from. On one node
 * that is the durable log (replayed after a restart); in the cluster only a retirer.
 */
export type HostPersistence = Omit<Persistence, "log"> & { log: InboundLog | LogRetirer };
