/**
 * Domain errors. Each has a stable `code` and the HTTP status it maps to; the gateway's one
 * `onError` turns any of them into the `{"error": {"code", "message"}}` envelope.
 * @module
 */

/** Base class of every twinmill error that reaches a user. */
export class TwinmillError extends Error {
  override name = "TwinmillError";
  constructor(
    /** Stable machine-readable code, e.g. `twin_not_found`. */
    readonly code: string,
    /** HTTP status for the gateway. */
    readonly status: number,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The twin does not exist (never provisioned, never sent a message). */
export class TwinNotFoundError extends TwinmillError {
  override name = "TwinNotFoundError";
  constructor(id: string) {
    super("twin_not_found", 404, `Twin "${id}" not found`);
  }
}

/** `If-Match` named a version that is no longer current. */
export class VersionConflictError extends TwinmillError {
  override name = "VersionConflictError";
  constructor(id: string, expected: number, actual: number) {
    super(
      "version_conflict",
      412,
      `Twin "${id}" is at version ${actual}, not ${expected}: reload and retry`,
    );
  }
}

/** Input failed validation. */
export class BadRequestError extends TwinmillError {
  override name = "BadRequestError";
  constructor(message: string, code = "bad_request") {
    super(code, 400, message);
  }
}

/** The actor's bounded mailbox is full; the caller may retry later. */
export class MailboxFullError extends TwinmillError {
  override name = "MailboxFullError";
  constructor(id: string) {
    super("overloaded", 503, `Twin "${id}" is overloaded: mailbox full, retry later`);
  }
}

/** A node component is shutting down or not ready. */
export class UnavailableError extends TwinmillError {
  override name = "UnavailableError";
  constructor(code: string, message: string) {
    super(code, 503, message);
  }
}

/** No alarm with this id (never raised, or cleared long ago). */
export class AlarmNotFoundError extends TwinmillError {
  override name = "AlarmNotFoundError";
  constructor(id: string) {
    super("alarm_not_found", 404, `Alarm "${id}" not found`);
  }
}

/** Missing or invalid credentials (401). */
export class UnauthorizedError extends TwinmillError {
  override name = "UnauthorizedError";
  constructor(message = "Authentication required: send Authorization: Bearer <API key or JWT>") {
    super("unauthorized", 401, message);
  }
}

/** Authenticated, but the role or site scope does not allow it (403). */
export class ForbiddenError extends TwinmillError {
  override name = "ForbiddenError";
  constructor(message: string) {
    super("forbidden", 403, message);
  }
}

/** Too many requests or messages (429); retry after `retryAfterSec`. */
export class RateLimitedError extends TwinmillError {
  override name = "RateLimitedError";
  constructor(readonly retryAfterSec: number, message = "Too many requests; retry later") {
    super("rate_limited", 429, message);
  }
}

/** A twin's command queue is full. */
export class CommandQueueFullError extends TwinmillError {
  override name = "CommandQueueFullError";
  constructor(id: string, open: number) {
    super(
      "command_queue_full",
      409,
      `Twin "${id}" already has ${open} open commands (the most it queues); wait for some to ` +
        `finish or expire`,
    );
  }
}

/** No command with that id (it never existed, or was dropped from the twin's history). */
export class CommandNotFoundError extends TwinmillError {
  override name = "CommandNotFoundError";
  constructor(twin: string, id: string) {
    super("command_not_found", 404, `Twin "${twin}" has no command "${id}"`);
  }
}

/** A sync command got no result in time. */
export class CommandTimeoutError extends TwinmillError {
  override name = "CommandTimeoutError";
  constructor(twin: string, id: string, status: string, ms: number) {
    super(
      "command_timeout",
      504,
      `Command "${id}" of twin "${twin}" got no result within ${ms} ms (it is ${status}; it ` +
        `expires now and is not delivered later)`,
    );
  }
}

/** The change would make the twin's state larger than its size limit (413). */
export class TwinTooLargeError extends TwinmillError {
  override name = "TwinTooLargeError";
  constructor(id: string, readonly size: number, readonly limit: number) {
    super(
      "twin_too_large",
      413,
      `Twin "${id}" would be ${size} bytes (attributes, reported and desired state), over its ` +
        `limit of ${limit} bytes (TWINMILL_TWIN_MAX_BYTES): the change was not applied; remove ` +
        `fields first`,
    );
  }
}

/**
 * The twin is quarantined: a snapshot of it could not be stored, its unsaved changes were
 * dropped, and it takes no changes until the quarantine ends (503).
 */
export class TwinQuarantinedError extends TwinmillError {
  override name = "TwinQuarantinedError";
  constructor(id: string, reason: string, until: number, lost = false) {
    super(
      "twin_quarantined",
      503,
      `Twin "${id}" is quarantined until ${new Date(until).toISOString()}: its snapshot ` +
        `could not be stored (${reason})` +
        (lost ? "; this change was not applied" : "; it takes no changes meanwhile"),
    );
  }
}
