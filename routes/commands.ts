/**
 * Command routes (`/v1/twins/{id}/commands`): send a command to a device, sync (wait for its
 * result) or async (202 with the id; poll or stream `types=command`), read one, list recent.
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { TwinService } from "../src/runtime/twin_service.ts";
import type { Transport } from "../src/transport/port.ts";
import { subjects } from "../src/transport/subjects.ts";
import { type Command, isOpen, newCommand } from "../actors/commands.ts";
import {
  BadRequestError,
  CommandNotFoundError,
  CommandTimeoutError,
  TwinNotFoundError,
} from "../src/errors.ts";
import { errors, IdParam, iso, json, notFound } from "./schemas.ts";
import { validationHook } from "./validation.ts";

/** Limits of a command request. */
export const COMMAND_LIMITS = {
  /** Sync: how long the request waits for the result (ms). */
  sync: { min: 100, max: 60_000, default: 10_000 },
  /** Async: how long the command may stay queued or unanswered (ms): 1 s … 7 days. */
  async: { min: 1_000, max: 7 * 24 * 3_600_000, default: 3_600_000 },
  /** Largest `args` (bytes of JSON). */
  maxArgsBytes: 16 * 1024,
};

const CommandBody = z.object({
  name: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, "name must be 1-64 of A-Z a-z 0-9 _ - . :"),
  args: z.record(z.string(), z.unknown()).optional().openapi({ example: { rpm: 1200 } }),
  mode: z.enum(["sync", "async"]).optional().openapi({
    description: "sync: wait for the device's result (200, or 504 command_timeout); " +
      "async (default): 202 with the command id at once",
  }),
  timeoutMs: z.number().int().positive().optional().openapi({
    description: "sync: how long to wait for the result (100–60000, default 10000); async: " +
      "how long the command may stay queued or unanswered before it expires (1000–604800000, " +
      "default 3600000)",
  }),
}).openapi("CommandRequest");

const CommandView = z.object({
  id: z.string(),
  twin: z.string(),
  name: z.string(),
  args: z.record(z.string(), z.unknown()),
  mode: z.enum(["sync", "async"]),
  status: z.enum(["pending", "delivered", "succeeded", "failed", "expired"]),
  source: z.string().openapi({ description: "`api`, or `rule:{id}` for a rule's action" }),
  createdAt: z.string(),
  expiresAt: z.string(),
  deliveredAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  deliveries: z.number().int(),
  result: z.unknown().optional(),
  error: z.unknown().optional(),
}).openapi("Command");

const CmdParams = IdParam.extend({
  cmdId: z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, "bad command id")
    .openapi({ param: { name: "cmdId", in: "path" } }),
});

/** A command as the API shows it. */
export function commandView(twin: string, c: Command) {
  return {
    id: c.id,
    twin,
    name: c.name,
    args: c.args,
    mode: c.mode,
    status: c.status,
    source: c.source,
    createdAt: iso(c.createdAt),
    expiresAt: iso(c.expiresAt),
    deliveredAt: c.deliveredAt === undefined ? null : iso(c.deliveredAt),
    finishedAt: c.finishedAt === undefined ? null : iso(c.finishedAt),
    deliveries: c.deliveries,
    ...(c.result !== undefined ? { result: c.result } : {}),
    ...(c.error !== undefined ? { error: c.error } : {}),
  };
}

const send = createRoute({
  method: "post",
  path: "/{id}/commands",
  tags: ["commands"],
  summary: "Send a command to the device (queued while it is offline)",
  description:
    "Published to the device on `twins/{id}/commands/{cmdId}` (QoS 1) while it listens " +
    "(subscribed to `twins/{id}/commands/+`), else queued (up to 16 open per twin) until " +
    "it does or the command expires. The device answers on " +
    '`twins/{id}/commands/{cmdId}/result` with `{"status": "ok"|"error", "result"|"error"}`.',
  request: {
    params: IdParam,
    body: { content: { "application/json": { schema: CommandBody } }, required: true },
  },
  responses: {
    200: json(CommandView, "sync: the finished command with the device's result or error"),
    202: json(CommandView, "async: queued (or already delivered)"),
    409: json(
      z.object({ error: z.object({ code: z.string(), message: z.string() }) }),
      "Queue full",
    ),
    504: json(
      z.object({ error: z.object({ code: z.string(), message: z.string() }) }),
      "No result in time (sync)",
    ),
    ...errors(400, 404),
  },
});

const getOne = createRoute({
  method: "get",
  path: "/{id}/commands/{cmdId}",
  tags: ["commands"],
  summary: "One command and its status",
  request: { params: CmdParams },
  responses: { 200: json(CommandView, "The command"), ...errors(400), ...notFound("Command") },
});

const list = createRoute({
  method: "get",
  path: "/{id}/commands",
  tags: ["commands"],
  summary: "The twin's open commands and the last 20 finished, newest first",
  request: { params: IdParam },
  responses: {
    200: json(z.object({ items: z.array(CommandView) }), "Commands"),
    ...errors(400, 404),
  },
});

/** Wait until command `cmdId` of `twin` finishes, or `ms` pass (then null). */
function waitFinished(
  twins: TwinService,
  transport: Transport,
  twin: string,
  cmdId: string,
  ms: number,
  sent: Promise<Command>,
): Promise<Command | null> {
  return new Promise((resolve, reject) => {
    let done = false;
    /** The first outcome wins; the subscription and timers end with it. */
    const settle = (outcome: () => void) => {
      if (done) return;
      done = true;
      sub.unsubscribe();
      clearTimeout(timer);
      clearInterval(poll);
      outcome();
    };
    const finish = (c: Command | null) => settle(() => resolve(c));
    const check = () =>
      twins.commands(twin).then((l) => {
        const c = l?.find((x) => x.id === cmdId);
        if (c && !isOpen(c)) finish(c);
      }, () => {});
    // an event says when to look (the twin's state is updated right after it is published);
    // a poll covers a stream subscription still being announced to the owner (cluster)
    const sub = transport.subscribe(subjects.event("command", twin), (m) => {
      const d = (m.data as { data?: Command }).data;
      if (d?.id === cmdId && !isOpen(d)) setTimeout(check, 0);
    });
    const poll = setInterval(check, 1_000);
    const timer = setTimeout(() => finish(null), ms);
    sent.then((c) => !isOpen(c) && finish(c), (err) => settle(() => reject(err)));
  });
}

/** Command routes, mounted at `/v1/twins`. */
export function commandRoutes(twins: TwinService, transport: Transport): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  app.openapi(send, async (c) => {
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    const mode = body.mode ?? "async";
    const lim = COMMAND_LIMITS[mode];
    const ms = body.timeoutMs ?? lim.default;
    if (ms < lim.min || ms > lim.max) {
      throw new BadRequestError(
        `timeoutMs: ${mode} commands take ${lim.min}–${lim.max} ms, got ${ms}`,
        "bad_timeout",
      );
    }
    const args = (body.args ?? {}) as Record<string, unknown>;
    if (new TextEncoder().encode(JSON.stringify(args)).byteLength > COMMAND_LIMITS.maxArgsBytes) {
      throw new BadRequestError(
        `args: at most ${COMMAND_LIMITS.maxArgsBytes} bytes of JSON`,
        "args_too_large",
      );
    }
    const cmd = newCommand({
      name: body.name,
      args,
      mode,
      source: "api",
      now: Date.now(),
      ttlMs: ms,
    });
    if (mode === "async") {
      const queued = await twins.sendCommand(id, cmd);
      return c.json(commandView(id, queued), 202);
    }
    const done = await waitFinished(twins, transport, id, cmd.id, ms, twins.sendCommand(id, cmd));
    if (!done) {
      const now = (await twins.commands(id))?.find((x) => x.id === cmd.id);
      throw new CommandTimeoutError(id, cmd.id, now?.status ?? "pending", ms);
    }
    return c.json(commandView(id, done), 200);
  });
  app.openapi(getOne, async (c) => {
    const { id, cmdId } = c.req.valid("param");
    const l = await twins.commands(id);
    if (!l) throw new TwinNotFoundError(id);
    const cmd = l.find((x) => x.id === cmdId);
    if (!cmd) throw new CommandNotFoundError(id, cmdId);
    return c.json(commandView(id, cmd), 200);
  });
  app.openapi(list, async (c) => {
    const { id } = c.req.valid("param");
    const l = await twins.commands(id);
    if (!l) throw new TwinNotFoundError(id);
    return c.json({ items: l.slice().reverse().map((x) => commandView(id, x)) }, 200);
  });
  return app;
}
