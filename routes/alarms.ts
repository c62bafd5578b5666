/**
 * Alarm routes: list with filters and cursor paging, acknowledge. Times go out as RFC 3339.
 * @module
 */
import { createRoute, type Hook, OpenAPIHono } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import type { Alarm } from "../actors/rules/mod.ts";
import { BadRequestError } from "../src/errors.ts";
import type { AlarmService } from "../src/rules/service.ts";
import {
  AckBody,
  AlarmIdParam,
  AlarmPage,
  AlarmQueryParams,
  AlarmSchema,
  errors,
  iso,
  json,
  notFound,
} from "./schemas.ts";
import { validationHook } from "./validation.ts";

/** A bad alarm id is `bad_alarm_id`; anything else as {@linkcode validationHook} says. */
// deno-lint-ignore no-explicit-any
const hook: Hook<any, any, any, any> = (result, c) => {
  if (!result.success && result.target === "param") {
    const issue = result.error.issues[0];
    throw new BadRequestError(`${issue.path.join(".")}: ${issue.message}`, "bad_alarm_id");
  }
  return validationHook(result, c);
};

/**
 * Let a JSON request with a blank body mean `{}`: the body of an acknowledgement is optional,
 * and clients that always send `content-type: application/json` send it with no body.
 * The JSON validator reads the body through the request's body cache (which holds promises,
 * though typed as values), so the blank text is replaced there. `alarms_test.ts` pins this.
 */
const blankJsonIsEmpty: MiddlewareHandler = async (c, next) => {
  if ((await c.req.text()).trim() === "") {
    (c.req.bodyCache as unknown as { text: Promise<string> }).text = Promise.resolve("{}");
  }
  await next();
};

/** An alarm with its times as RFC 3339 (`clearedAt` null stays null). */
export function alarmView(a: Alarm) {
  const { ackedAt, ...rest } = a;
  return {
    ...rest,
    raisedAt: iso(a.raisedAt),
    clearedAt: a.clearedAt === null ? null : iso(a.clearedAt),
    updatedAt: iso(a.updatedAt),
    ...(ackedAt === undefined ? {} : { ackedAt: iso(ackedAt) }),
  };
}

const listAlarms = createRoute({
  method: "get",
  path: "/",
  tags: ["alarms"],
  summary: "List alarms by twin and raise time, filtered by state, twin and severity",
  request: { query: AlarmQueryParams },
  responses: { 200: json(AlarmPage, "A page of alarms"), ...errors(400) },
});

const ackAlarm = createRoute({
  method: "post",
  path: "/{id}/ack",
  tags: ["alarms"],
  summary: "Acknowledge an alarm (again: no change), with an optional comment",
  middleware: [blankJsonIsEmpty] as const,
  request: {
    params: AlarmIdParam,
    body: { content: { "application/json": { schema: AckBody } }, required: false },
  },
  responses: {
    200: json(AlarmSchema, "The acknowledged alarm"),
    ...errors(400),
    ...notFound("Alarm"),
  },
});

/** Alarm routes, mounted at `/v1/alarms`. */
export function alarmRoutes(svc: AlarmService): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: hook });

  app.openapi(listAlarms, async (c) => {
    const q = c.req.valid("query");
    const page = await svc.listAlarms(q);
    return c.json(
      { items: page.items.map(alarmView), ...(page.next === undefined ? {} : { next: page.next }) },
      200,
    );
  });

  app.openapi(ackAlarm, async (c) => {
    const { id } = c.req.valid("param");
    const { comment } = c.req.valid("json");
    return c.json(alarmView(await svc.ackAlarm(id, comment)), 200);
  });

  return app;
}
