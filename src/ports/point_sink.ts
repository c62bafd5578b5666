/**
 * The point sink port: where the twin host writes telemetry, rollup and alarm points. The
 * adapter is the InfluxDB writer (`src/bridges/influx_writer.ts`); without one, no points.
 * @module
 */

/** A point as the InfluxDB writer takes it. */
export interface PointSink {
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
