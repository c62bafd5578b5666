/**
 * zod-openapi validation failures → 400 in the error envelope, naming the bad field.
 * @module
 */
import type { Hook } from "@hono/zod-openapi";
import { BadRequestError } from "../src/errors.ts";

/** Default hook for every OpenAPI route. */
// deno-lint-ignore no-explicit-any
export const validationHook: Hook<any, any, any, any> = (result) => {
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue.path.length ? issue.path.join(".") : result.target;
    const code = issue.path[0] === "id" ? "bad_twin_id" : "bad_request";
    throw new BadRequestError(`${where}: ${issue.message}`, code);
  }
};
