/**
 * Refused provisioning attempts: each is audited (`provision`, actor
 * `provisioning-key:<id>`, result `denied` or `failed`); the log gets one line per key and
 * refusal code per minute at most, so a flood of bad keys cannot flood it.
 * @module
 */
import type { TwinmillError } from "../errors.ts";
import type { Logger } from "../obs/log.ts";
import type { AuditSink } from "./provisioning_types.ts";

/** Refusals logged at most once per key and code per minute. */
const LOG_EVERY_MS = 60_000;

/** The audit and log of refused provisioning attempts. */
export class Refusals {
  readonly #audit: AuditSink;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #logged = new Map<string, number>();

  constructor(audit: AuditSink, logger: Logger, now: () => number) {
    this.#audit = audit;
    this.#logger = logger;
    this.#now = now;
  }

  /** Audit a refusal; log it at most once per key and code per minute. */
  record(
    keyId: string | null,
    err: TwinmillError,
    detail: Record<string, string>,
    requestId?: string,
  ): void {
    this.#audit.record({
      actor: `provisioning-key:${keyId ?? "unknown"}`,
      action: "provision",
      target: detail.twin,
      result: err.status >= 500 ? "failed" : "denied",
      requestId,
      detail: { ...detail, code: err.code },
    });
    const k = `${keyId}\u0000${err.code}`;
    const now = this.#now();
    if ((this.#logged.get(k) ?? -Infinity) + LOG_EVERY_MS > now) return;
    if (this.#logged.size > 10_000) this.#logged.clear();
    this.#logged.set(k, now);
    this.#logger.warn("provisioning refused", {
      provisioner: keyId ?? "unknown",
      code: err.code,
      reason: err.message,
      ...detail,
    });
  }
}
