/**
 * JSON-lines logger on stderr. One line per event: `{"ts","level","mod","msg",...fields}`.
 *
 * Secrets never go through here: callers log ids, never passwords, tokens or keys. As a
 * second line of defence, any field whose name looks like a secret (`token`, `password`,
 * `secret`, `authorization`, `apiKey`, `cookie`…) is written as `[redacted]`, at any depth.
 * @module
 */

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
export function createLogger(level: Level = "info", mod = "twinmill", sink = stderrSink): Logger {
  const min = LEVELS.indexOf(level);
  const emit = (lvl: Level, msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS.indexOf(lvl) < min) return;
    const rec: Record<string, unknown> = { ts: new Date().toISOString(), level: lvl, mod, msg };
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
    child: (sub) => createLogger(level, `${mod}.${sub}`, sink),
  };
}

/** A logger that drops everything (unit tests). */
export const silentLogger: Logger = createLogger("error", "silent", () => {});
