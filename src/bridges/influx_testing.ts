/**
 * A fake InfluxDB and helpers for the InfluxDB writer's unit tests.
 * @module
 */
import { createLogger, type Logger } from "../obs/log.ts";
import { createMetrics, type Metrics } from "../obs/metrics.ts";
import { InfluxWriter } from "./influx_writer.ts";
import type { Point } from "./line_protocol.ts";
import type { InfluxWriterOptions } from "./influx_options.ts";

/** A request the fake received. */
export interface Req {
  method: string;
  path: string;
  params: URLSearchParams;
  headers: Headers;
  lines: string[];
}

/** How the fake answers request number `n` (1-based). */
export type Handler = (req: Req, n: number) => Response | Promise<Response>;

/** A fake InfluxDB: records every request and the lines it accepted (2xx), in order. */
export class FakeInflux {
  readonly reqs: Req[] = [];
  readonly accepted: string[] = [];
  handler: Handler = () => new Response(null, { status: 204 });

  /**
   * From now on, hold every request until the returned function is called, then answer 204
   * (calling `hold()` again holds the next ones behind a new gate).
   */
  hold(): () => void {
    let release!: () => void;
    const gate = new Promise<void>((r) => release = r);
    this.handler = async () => {
      await gate;
      return new Response(null, { status: 204 });
    };
    return release;
  }
  readonly #server: Deno.HttpServer<Deno.NetAddr>;

  constructor(port = 0) {
    this.#server = Deno.serve({ port, hostname: "127.0.0.1", onListen() {} }, async (r) => {
      const url = new URL(r.url);
      const body = await r.text();
      const req: Req = {
        method: r.method,
        path: url.pathname,
        params: url.searchParams,
        headers: r.headers,
        lines: body ? body.split("\n") : [],
      };
      this.reqs.push(req);
      const res = await this.handler(req, this.reqs.length);
      if (res.ok && url.pathname.endsWith("/write")) this.accepted.push(...req.lines);
      return res;
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.#server.addr.port}`;
  }

  get writes(): Req[] {
    return this.reqs.filter((r) => r.path.endsWith("/write"));
  }

  async [Symbol.asyncDispose]() {
    await this.#server.shutdown();
  }
}

/** Polls `fn` until it is truthy; fails after `timeoutMs`. */
export async function until(fn: () => unknown, message: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${message}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Settles to "pending" when `p` has not resolved within a few macrotasks. */
export async function state(p: Promise<unknown>): Promise<"resolved" | "pending"> {
  let done = false;
  p.then(() => done = true);
  for (let i = 0; i < 3; i++) await new Promise((r) => setTimeout(r, 0));
  return done ? "resolved" : "pending";
}

/** The value of `metric` with `labels` (0 when absent). */
export async function value(
  metric: { get(): Promise<{ values: { value: number; labels: object }[] }> },
  labels: Record<string, string> = {},
): Promise<number> {
  const { values } = await metric.get();
  const hit = values.find((v) =>
    Object.entries(labels).every(([k, l]) => (v.labels as Record<string, unknown>)[k] === l)
  );
  return hit?.value ?? 0;
}

/** A debug logger that keeps its lines, parsed. */
export function capture(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return { lines, logger: createLogger("debug", "test", (l) => lines.push(JSON.parse(l))) };
}

/** A v2 writer on `url` with short backoffs, its metrics and its log lines. */
export function setup(url: string, opts: Partial<InfluxWriterOptions> = {}) {
  const metrics: Metrics = createMetrics();
  const log = capture();
  const writer = new InfluxWriter({
    url,
    api: "v2",
    bucket: "b",
    org: "o",
    minBackoffMs: 5,
    maxBackoffMs: 20,
    logger: log.logger,
    metrics,
    ...opts,
  });
  return { writer, metrics, logs: log.lines };
}

/** Point `i` (three devices in turn). */
export const point = (i: number): Point => ({
  measurement: "telemetry",
  tags: { device: `d${i % 3}` },
  fields: { temp: i },
  ts: 1_700_000_000_000 + i,
});
/** Point `i` in line protocol. */
export const lineOf = (i: number) =>
  `telemetry,device=d${i % 3} temp=${i} ${1_700_000_000_000 + i}000000`;
/** `0 .. n-1`. */
export const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * `lines` grouped by series (the line up to its first space; the tests' series have no
 * escaped space), each group in its order, groups sorted: what InfluxDB's result depends on.
 */
export function bySeries(lines: string[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const l of lines) {
    const k = l.slice(0, l.indexOf(" "));
    m.set(k, [...m.get(k) ?? [], l]);
  }
  return new Map([...m].sort(([a], [b]) => a < b ? -1 : 1));
}
