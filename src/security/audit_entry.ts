/**
 * Audit entries: their shape, the redaction of secret details, the check of a stored or
 * submitted entry, and the filters of a query. Shared by the file log (`audit.ts`), the
 * JetStream log (`jetstream_audit.ts`) and the denial gate.
 * @module
 */

/** One audited action. */
export interface AuditEntry {
  /** ms since the epoch. */
  ts: number;
  requestId?: string;
  /** Principal id: `key:ab12cd…`, `jwt:alice`, `device:press-7`, `anonymous`. Never a secret. */
  actor: string;
  role?: string;
  /** Dotted action: `twin.put`, `credential.revoke`, `auth.failure`, `acl.denied`, … */
  action: string;
  target?: string;
  result: "ok" | "denied" | "failed";
  detail?: Record<string, string | number | boolean>;
}

/** What {@linkcode AuditLog.record} takes: an entry whose `ts` defaults to now. */
export type AuditInput = Omit<AuditEntry, "ts"> & { ts?: number };

/** A query of the audit log. */
export interface AuditQuery {
  /** Only entries at or after this time (ms since the epoch). */
  since?: number;
  /** Exact principal id. */
  actor?: string;
  /** Exact action, or a prefix ending with "." (`credential.` matches `credential.revoke`). */
  action?: string;
  /** Most entries returned (newest first). */
  limit: number;
}
/** What a redacted detail value becomes. */
export const REDACTED = "[redacted]";

const SECRET_KEY = /token|password|secret|key|authorization/i;
/** A value that is plainly a credential whatever its key (`Bearer eyJ…`, `Basic dXNl…`). */
const SECRET_VALUE = /^\s*(bearer|basic)\s+\S/i;
const RESULTS: ReadonlySet<string> = new Set(["ok", "denied", "failed"]);
const MAX_TIME = 8.64e15;

/**
 * A copy of `detail` fit to store: values of keys matching
 * `/token|password|secret|key|authorization/i`, and values like `Bearer …`, become
 * {@linkcode REDACTED}; values that are not strings, finite numbers or booleans are dropped.
 * @example
 * ```ts
 * redact({ apiKey: "s3cr3t", twin: "press-7" }); // { apiKey: "[redacted]", twin: "press-7" }
 * ```
 */
export function redact(detail: unknown): AuditEntry["detail"] {
  if (typeof detail !== "object" || detail === null || Array.isArray(detail)) return undefined;
  const out: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(detail)) {
    if (typeof v === "string") out[k] = SECRET_KEY.test(k) || SECRET_VALUE.test(v) ? REDACTED : v;
    else if (typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v))) {
      out[k] = SECRET_KEY.test(k) ? REDACTED : v;
    }
  }
  return out;
}

/** True for a timestamp a `Date` can hold. */
export const isTime = (t: unknown): t is number => typeof t === "number" && Math.abs(t) <= MAX_TIME;
const optString = (v: unknown) => v === undefined || typeof v === "string";

/** The entry as stored, fields in a fixed order; undefined when it is not an entry. */
export function toEntry(e: Partial<AuditEntry>, ts: number): AuditEntry | undefined {
  if (typeof e.actor !== "string" || typeof e.action !== "string") return undefined;
  if (typeof e.result !== "string" || !RESULTS.has(e.result)) return undefined;
  if (!optString(e.requestId) || !optString(e.role) || !optString(e.target)) return undefined;
  const detail = e.detail === undefined ? undefined : redact(e.detail);
  return {
    ts,
    ...(e.requestId === undefined ? {} : { requestId: e.requestId }),
    actor: e.actor,
    ...(e.role === undefined ? {} : { role: e.role }),
    action: e.action,
    ...(e.target === undefined ? {} : { target: e.target }),
    result: e.result,
    ...(detail === undefined ? {} : { detail }),
  };
}

/** A stored line as an entry; undefined when it is malformed. */
export function parseLine(line: string): AuditEntry | undefined {
  if (line.trim() === "") return undefined;
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  const e = v as Partial<AuditEntry>;
  if (!isTime(e.ts)) return undefined;
  if (e.detail !== undefined && (typeof e.detail !== "object" || e.detail === null)) {
    return undefined;
  }
  return toEntry(e, e.ts);
}

/** True when entry `e` passes the filters of `q` (an `action` ending in "." is a prefix). */
export function matches(e: AuditEntry, q: AuditQuery): boolean {
  if (q.since !== undefined && e.ts < q.since) return false;
  if (q.actor !== undefined && e.actor !== q.actor) return false;
  if (q.action === undefined) return true;
  return q.action.endsWith(".") ? e.action.startsWith(q.action) : e.action === q.action;
}
