/**
 * The JSON intake for HTTP: every JSON request body under `/v1` is read and checked against
 * the intake's limits (`actors/json_intake.ts`) before any route sees it, so a body nested
 * 10,000 deep, with a million keys or `1e400` in it is a 400 in the error envelope naming the
 * limit — never applied, never acknowledged.
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { DEFAULT_JSON_LIMITS, type JsonLimits, readJson } from "../actors/json_intake.ts";
import { BadRequestError } from "../src/errors.ts";

const WITH_BODY = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/**
 * Check JSON bodies: requests declared JSON (`application/json`, `…+json`), and requests
 * without a content type (routes that read the body as JSON anyway). A body over a limit is
 * a 400 whose code names the limit (`payload_too_deep`, `too_many_keys`, `string_too_long`,
 * `array_too_long`, `bad_number`, `bad_key`); malformed JSON is left to the route.
 */
export function jsonIntake(limits: JsonLimits = DEFAULT_JSON_LIMITS): MiddlewareHandler {
  return async (c, next) => {
    if (!WITH_BODY.has(c.req.method)) return next();
    const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
    const declared = /^application\/([\w.-]+\+)?json$/.test(type);
    if (!declared && type !== "") return next();
    // read once: Hono caches the text, and the routes' c.req.json()/text() read the cache
    const text = await c.req.text();
    if (text.trim() === "") return next();
    const r = readJson(text, limits);
    // malformed JSON is each route's to answer, as before (its message, its audit)
    if (!r.ok && r.violation.code !== "not_json") {
      throw new BadRequestError(`Request body refused: ${r.violation.message}`, r.violation.code);
    }
    return next();
  };
}
