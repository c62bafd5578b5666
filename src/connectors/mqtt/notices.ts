/**
 * How the broker reports what it refuses: a metric for every refusal, the audit hook, and a
 * warning logged at most once a minute per device and kind (a misbehaving device must not
 * flood the log).
 * @module
 */
import type { Logger } from "../../obs/log.ts";
import type { Metrics } from "../../obs/metrics.ts";

/** A refused connect or an ACL denial, as the audit hook gets it. */
export interface Denial {
  device: string;
  action: "connect" | "publish" | "subscribe";
  reason: string;
}

/** Keys remembered for {@linkcode Notices.oncePerMinute} before they are all forgotten. */
const MAX_LOG_KEYS = 10_000;

/** The broker's refusal reports: metrics, audit and rate-limited warnings. */
export class Notices {
  /** Log lines keyed by device and kind: when each was last logged. */
  readonly #lastLogged = new Map<string, number>();

  constructor(
    readonly log: Logger,
    readonly metrics: Metrics,
    readonly onDenied?: (e: Denial) => void,
  ) {}

  /** True at most once per minute per key: the caller logs then. Bounded in keys. */
  oncePerMinute(key: string): boolean {
    const now = Date.now();
    if ((this.#lastLogged.get(key) ?? 0) + 60_000 > now) return false;
    if (this.#lastLogged.size > MAX_LOG_KEYS) this.#lastLogged.clear();
    this.#lastLogged.set(key, now);
    return true;
  }

  /** A publish or subscribe the ACL refused. */
  aclDenied(twin: string, action: "publish" | "subscribe", topic: string): void {
    this.metrics.aclDenials.inc({ action });
    this.onDenied?.({ device: twin, action, reason: `acl: ${topic.slice(0, 200)}` });
    if (this.oncePerMinute(`${twin}\u0000${action}`)) {
      this.log.warn("device denied by the ACL", {
        device: twin,
        action,
        topic: topic.slice(0, 200),
      });
    }
  }

  /** A refused connect (or TLS handshake, or a connection cut before its CONNECT). */
  authFailed(
    client: { id: string },
    username: string | undefined,
    reason: string,
    error?: string,
  ): void {
    this.metrics.authFailures.inc({ reason });
    this.onDenied?.({ device: (username ?? client.id).slice(0, 128), action: "connect", reason });
    if (this.oncePerMinute(`${username ?? ""}\u0000${reason}`)) {
      // never the password
      this.log.warn("device authentication failed", {
        device: username?.slice(0, 128),
        client: client.id.slice(0, 128),
        reason,
        ...(error ? { error } : {}),
      });
    }
  }
}
