/**
 * Counting what reached InfluxDB: the number of `telemetry` points of one device, and a wait
 * for an exact count that fails at once when there are more (a point written twice).
 * @module
 */
import assert from "node:assert/strict";
import type { InfluxServer } from "./influxd.ts";
import { waitFor } from "./wait_for.ts";

/** `count("temp")` of `device` in measurement `telemetry` of `db` (0 before its first point). */
export async function influxCount(
  influx: InfluxServer,
  db: string,
  device: string,
): Promise<number> {
  const r = await influx.query(
    `SELECT count("temp") FROM "telemetry" WHERE "device" = '${device}'`,
    db,
  );
  if (r?.results?.[0]?.error) throw new Error(`InfluxDB: ${r.results[0].error}`);
  return r?.results?.[0]?.series?.[0]?.values?.[0]?.[1] ?? 0;
}

/**
 * Waits until InfluxDB holds exactly `n` points of `device`; fails at once on more, and on
 * timeout with the last count seen.
 *
 * @example
 * ```ts
 * await waitForInfluxCount(influx, "twinmill", "press-7", 1000);
 * ```
 */
export async function waitForInfluxCount(
  influx: InfluxServer,
  db: string,
  device: string,
  n: number,
  timeoutMs = 20_000,
): Promise<void> {
  let last = 0;
  await waitFor(async () => {
    last = await influxCount(influx, db, device);
    assert.ok(last <= n, `InfluxDB holds ${last} points of ${device}, more than the ${n} sent`);
    return last === n;
  }, { timeoutMs, message: `${n} points of ${device} in InfluxDB` }).catch((err) => {
    throw new Error(`${err.message} (last count ${last})`, { cause: err });
  });
}
