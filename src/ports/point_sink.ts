/**
 * The point sink port: where the twin host writes telemetry, rollup and alarm points. The
 * adapter is the InfluxDB writer (`src/bridges/influx_writer.ts`); without one, no points.
 * @module
 */

/** Where points go: the InfluxDB writer, or a fake in tests. */
export interface PointSink {
  /**
   * Queues a point; the promise resolves once it is written (or definitively refused). Points
   * written in a row may get the same promise (the InfluxDB writer gives one per batch): the
   * caller then waits on it once for all of them.
   */
  write(p: {
    measurement: string;
    tags: Record<string, string>;
    fields: Record<string, number | boolean | string>;
    ts: number;
    /** Nanoseconds within the millisecond `ts` (see `Point.subMs`). */
    subMs?: number;
  }): Promise<void>;
  /** True while the sink buffers too much: the node holds back new input. */
  readonly full: boolean;
  /** Resolves once the sink is no longer `full` (absent: the host re-checks on its own events). */
  whenSpace?(): Promise<void>;
}
