/**
 * For tests: a twin host over in-memory persistence and the in-process transport, on the real
 * clock, logging nothing — what route and gateway tests put behind the app.
 * @module
 */
import { TwinHost, type TwinHostOptions } from "./twin_host.ts";
import { memoryPersistence } from "../persistence/memory.ts";
import { memoryTransport } from "../transport/memory.ts";
import { systemClock } from "./clock.ts";
import { silentLogger } from "../obs/log.ts";
import { createMetrics, type Metrics } from "../obs/metrics.ts";
import type { Transport } from "../transport/port.ts";

/** A twin host in memory, with its transport and metrics; `o` overrides any option. */
export function memoryHost(
  o: Partial<TwinHostOptions> = {},
): { host: TwinHost; transport: Transport; metrics: Metrics } {
  const metrics = o.metrics ?? createMetrics();
  const transport = o.transport ?? memoryTransport();
  const host = new TwinHost({
    persistence: memoryPersistence(),
    transport,
    clock: systemClock,
    logger: silentLogger,
    metrics,
    ...o,
  });
  return { host, transport, metrics };
}
