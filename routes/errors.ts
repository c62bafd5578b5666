/**
 * The one error mapper: every error becomes `{"error": {"code", "message"}}` with its status.
 * @module
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import { TwinmillError } from "../src/errors.ts";
import type { Logger } from "../src/obs/log.ts";

/** Build the `onError` handler. */
export function errorHandler(log: Logger) {
  return (err: Error, c: Context): Response => {
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
