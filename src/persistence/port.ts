/**
 * The persistence port: twin snapshots and the durable inbound log. Adapters: in-memory (tests)
 * and Deno KV (single node); the cluster adds JetStream KV. All pass
 * `tests/conformance/persistence_conformance.ts`.
 * @module
 */
import type { TwinRecord } from "../../actors/twin.ts";

/** One durable inbound device message. */
export interface LogEntry {
  /** Node-wide sequence, strictly increasing in the order the broker accepted messages. */
  seq: number;
  topic: string;
  payload: Uint8Array;
  /** Arrival time (ms since epoch). */
  at: number;
}

/** A page of twin records, in id order. */
export interface RecordPage {
  items: TwinRecord[];
  /** Opaque cursor for the next page; absent at the end. */
  cursor?: string;
}

/** Twin snapshots keyed by twin id. */
export interface SnapshotStore {
  load(id: string): Promise<TwinRecord | null>;
  /** Persist all records; resolves when they are durable. */
  saveMany(records: TwinRecord[]): Promise<void>;
  /** Records with id > `after`, in id order, at most `limit`. */
  list(after: string | undefined, limit: number): Promise<TwinRecord[]>;
}

/** The durable inbound log, with a persisted sequence high-water mark. */
export interface InboundLog {
  /** Append entries (sequences increasing); resolves when they are durable. */
  append(entries: LogEntry[]): Promise<void>;
  /** Remove entries whose effects are persisted elsewhere. */
  retire(seqs: number[]): Promise<void>;
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
