/**
 * The one error mapper: every error becomes `{"error": {"code", "message"}}` with its status.
 * @module
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { TwinmillError } from "../src/errors.ts";
import type { Logger } from "../src/obs/log.ts";

/**
 * Errors that only a request's own input can cause — a malformed %-escape in the path, or, from
 * the storage layer, a key longer than any valid id or a value past the store's size limit: a
 * 4xx naming the problem, never a 500. Input is validated before it reaches storage; this is
 * the net under that.
 */
export function inputError(err: unknown): TwinmillError | undefined {
  if (err instanceof URIError) {
    return new TwinmillError("bad_request", 400, "The path has a malformed %-escape");
  }
  if (!(err instanceof TypeError)) return undefined;
  if (/^Key too large/.test(err.message)) {
    return new TwinmillError(
      "bad_request",
      400,
      "An identifier in the request is longer than any valid one",
    );
  }
  if (/^Value too large/.test(err.message)) {
    return new TwinmillError("payload_too_large", 413, "The change would be too large to store");
  }
  return undefined;
}

/** Build the `onError` handler. */
export function errorHandler(log: Logger) {
  return (e: Error, c: Context): Response => {
    const err = inputError(e) ?? e;
    if (err instanceof TwinmillError) {
      return c.json({ error: { code: err.code, message: err.message } }, err.status as 400);
    }
    if (err instanceof HTTPException) {
      const status = err.status;
      const code = status === 413
        ? "payload_too_large"
        : status === 400
        ? "bad_request"
        : status === 404
        ? "not_found"
        : "http_error";
      const message = status === 413 ? "Request body is too large (limit 1 MiB)" : err.message;
      return c.json({ error: { code, message } }, status);
    }
    log.error("unhandled error in HTTP handler", {
      path: c.req.path,
      requestId: c.res.headers.get("x-request-id") ?? undefined,
      err,
    });
    return c.json({ error: { code: "internal", message: "Internal error" } }, 500);
  };
}
