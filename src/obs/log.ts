/**
 * JSON-lines logger on stderr. One line per event: `{"ts","level","mod","msg",...fields}`.
 *
 * Secrets never go through here: callers log ids, never passwords, tokens or keys. As a
 * second line of defence, any field whose name looks like a secret (`token`, `password`,
 * `secret`, `authorization`, `apiKey`, `cookie`…) is written as `[redacted]`, at any depth.
 * @module
 */

import { currentTrace } from "./trace.ts";

const SECRET_FIELD = /token|passw|secret|authori[sz]ation|api[-_]?key|cookie/i;

/** A copy of `v` with secret-looking fields replaced by `[redacted]` (depth ≤ 4). */
export function redact(v: unknown, depth = 0): unknown {
  if (v instanceof Error) return { name: v.name, message: v.message };
  if (v === null || typeof v !== "object" || depth > 4) return v;
  if (Array.isArray(v)) return v.map((x) => redact(x, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    out[k] = SECRET_FIELD.test(k) ? "[redacted]" : redact(x, depth + 1);
  }
  return out;
}

/** Log levels, most verbose first. */
export const LEVELS = ["debug", "info", "warn", "error"] as const;
/** A log level name. */
export type Level = typeof LEVELS[number];

/**
 * Levels by module: a default and overrides for module paths, from `TWINMILL_LOG` such as
 * `info` or `info,mqtt=debug,cluster.router=warn` (modules as in each line's `mod`, without the
 * leading `twinmill.`; the most specific prefix wins).
 */
export interface LogSpec {
  level: Level;
  modules: Record<string, Level>;
}

/** Parse a `TWINMILL_LOG` value; throws an `Error` naming the bad part. */
export function parseLogSpec(s: string): LogSpec {
  const spec: LogSpec = { level: "info", modules: {} };
  for (const part of s.split(",").map((p) => p.trim()).filter(Boolean)) {
    const [mod, lvl] = part.includes("=") ? part.split("=", 2) : [undefined, part];
    if (!LEVELS.includes(lvl as Level)) {
      throw new Error(`"${part}": level must be debug, info, warn or error`);
    }
    if (mod === undefined) spec.level = lvl as Level;
    else if (/^[a-z0-9_.-]+$/i.test(mod)) spec.modules[mod] = lvl as Level;
    else throw new Error(`"${part}": module must be a name such as mqtt or cluster.router`);
  }
  return spec;
}

/** The level of module `mod` (e.g. `twinmill.cluster.router`) under `spec`. */
export function levelOf(spec: LogSpec, mod: string): Level {
  const path = mod.startsWith("twinmill.") ? mod.slice("twinmill.".length) : mod;
  let best: string | undefined;
  for (const m of Object.keys(spec.modules)) {
    if ((path === m || path.startsWith(`${m}.`)) && (!best || m.length > best.length)) best = m;
  }
  return best === undefined ? spec.level : spec.modules[best];
}

/** A structured logger bound to a module name. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** A logger for a sub-module, sharing level and sink. */
  child(mod: string): Logger;
}

/** Where log lines go; tests may capture them. */
export type LogSink = (line: string) => void;

const encoder = new TextEncoder();
const stderrSink: LogSink = (line) => {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
};

/**
 * Create a logger writing JSON lines at or above `level`.
 *
 * @example
 * ```ts
 * const log = createLogger("info").child("mqtt");
 * log.warn("message rejected", { twin: "press-7", reason: "not_json" });
 * ```
 */
export function createLogger(
  level: Level | LogSpec | string = "info",
  mod = "twinmill",
  sink = stderrSink,
): Logger {
  const spec = typeof level === "string" ? parseLogSpec(level) : level;
  const min = LEVELS.indexOf(levelOf(spec, mod));
  const emit = (lvl: Level, msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS.indexOf(lvl) < min) return;
    const rec: Record<string, unknown> = { ts: new Date().toISOString(), level: lvl, mod, msg };
    const trace = currentTrace();
    if (trace) {
      rec.traceId = trace.traceId;
      if (trace.requestId) rec.requestId = trace.requestId;
    }
    if (fields) {
      for (const [k, v] of Object.entries(fields)) {
        rec[k] = SECRET_FIELD.test(k) ? "[redacted]" : redact(v);
      }
    }
    sink(JSON.stringify(rec));
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (sub) => createLogger(spec, `${mod}.${sub}`, sink),
  };
}

/** A logger that drops everything (unit tests). */
export const silentLogger: Logger = createLogger("error", "silent", () => {});
