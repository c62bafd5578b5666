/**
 * The seam of the ingest bench (`ingest.ts`) for a store the node also writes to (the
 * `ingest-influx` row, `ingest_influx.ts`): how to start it, point the node at it, and wait
 * until it holds every message's point.
 * @module
 */

/**
 * A store the node writes telemetry to, started fresh for each node run and stopped after it:
 * the node's time ends only once the store holds every point.
 */
export interface IngestStore extends AsyncDisposable {
  /** Env that points the node at the store. */
  env: Record<string, string>;
  /** Processes whose CPU is reported with the node's. */
  pids: Record<string, number>;
  /**
   * Resolves once the store holds exactly `perTwin` points of each of `ids`, written by the
   * node at `httpUrl`; throws if it holds more, or on the deadline. Returns a note on the
   * milestones on the way (e.g. when the node's writer had its last write accepted).
   */
  waitStored(httpUrl: string, ids: string[], perTwin: number, t0: number): Promise<string>;
  /** After the timing: throws unless each of `ids` has the point of every message once. */
  check(ids: string[], perTwin: number): Promise<void>;
}

/** How to start an {@linkcode IngestStore}, and what the row's notes say about it. */
export interface StoreKind {
  /** What the store is, e.g. `VictoriaMetrics`. */
  name: string;
  start(): Promise<IngestStore>;
  /** Notes on how the store is set up and counted. */
  notes: string[];
}
