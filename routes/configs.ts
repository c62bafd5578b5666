/**
 * Remote configuration routes: config templates (list, read, create/replace and apply,
 * delete) and their status over the targeted twins. Validation of the body is the service's
 * too (`config_invalid`, naming the field); this layer checks names and shapes.
 * @module
 */
import { createRoute, type Hook, OpenAPIHono, z } from "@hono/zod-openapi";
import { BadRequestError } from "../src/errors.ts";
import type { ConfigService } from "../src/mgmt/configs.ts";
import { ConfigNotFoundError } from "../src/mgmt/config_errors.ts";
import {
  ConfigInvalidError,
  type ConfigTemplate,
  MAX_FRAGMENT_BYTES,
} from "../src/mgmt/config_match.ts";
import { errors, iso, json, notFound } from "./schemas.ts";
import { validationHook } from "./validation.ts";
import { siteScope } from "./auth.ts";

/** A bad name is `bad_config_name`, a bad body `config_invalid`; else as validationHook. */
// deno-lint-ignore no-explicit-any
const hook: Hook<any, any, any, any> = (result, c) => {
  if (!result.success && (result.target === "param" || result.target === "json")) {
    const issue = result.error.issues[0];
    const where = issue.path.length ? issue.path.join(".") : "body";
    if (result.target === "json") throw new ConfigInvalidError(`${where}: ${issue.message}`);
    throw new BadRequestError(`${where}: ${issue.message}`, "bad_config_name");
  }
  return validationHook(result, c);
};

const NameParam = z.object({
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "config name must be 1-64 of A-Z a-z 0-9 _ - .")
    .openapi({ param: { name: "name", in: "path" }, example: "press-defaults" }),
});

const Time = z.iso.datetime().openapi({ example: "2024-05-01T12:00:00.000Z" });

const Selector = z.record(z.string().min(1).max(128), z.string().max(1024)).openapi({
  description: "Twins whose attributes equal all of these (compared as text); 1-16 attributes",
  example: { type: "press", site: "plant-1" },
});

const Fragment = z.record(z.string(), z.unknown()).openapi({
  description: `Merged (JSON merge patch) into each selected twin's desired state; at most ` +
    `${MAX_FRAGMENT_BYTES / 1024} KiB as JSON, 32 levels deep; \`null\` deletes a key. The ` +
    "key `configStatus` is reserved: the config's version travels there.",
  example: { sampleRate: 5, limits: { temp: 80 } },
});

const ConfigBody = z.object({ selector: Selector, desired: Fragment }).strict()
  .openapi("ConfigTemplateBody");

const ConfigSchema = z.object({
  name: z.string(),
  selector: Selector,
  desired: Fragment,
  version: z.number().int().openapi({
    description: "1 on creation, +1 on each PUT that changes selector or desired",
  }),
  createdAt: Time,
  updatedAt: Time,
}).openapi("ConfigTemplate");

const Failure = z.object({ id: z.string(), error: z.string() });

const PutResult = z.object({
  config: ConfigSchema,
  applied: z.object({
    twins: z.number().int().openapi({ description: "Selected twins whose desired holds it now" }),
    changed: z.number().int().openapi({ description: "Of those, the ones patched by this PUT" }),
    failed: z.number().int().openapi({ description: "Selected twins whose patch failed" }),
    errors: z.array(Failure).openapi({ description: "The first 20 failures" }),
  }),
}).openapi("ConfigPutResult");

const ConfigList = z.object({
  items: z.array(ConfigSchema),
  next: z.string().optional().openapi({ description: "Cursor of the next page; absent at end" }),
}).openapi("ConfigList");

const StatusSchema = z.object({
  name: z.string(),
  version: z.number().int(),
  targeted: z.number().int().openapi({ description: "Twins the selector matches now" }),
  applied: z.number().int().openapi({ description: "Their reported state holds the fragment" }),
  pending: z.number().int(),
  failed: z.number().int().openapi({
    description: 'The device reported `configStatus.{name}: {version, state: "failed"}` ' +
      "for the current version",
  }),
  sample: z.object({
    pending: z.array(z.string()).openapi({ description: "Up to 20 pending twin ids" }),
    failed: z.array(Failure).openapi({ description: "Up to 20 failed twins and their error" }),
  }),
}).openapi("ConfigStatus");

const view = (c: ConfigTemplate) => ({
  ...c,
  createdAt: iso(c.createdAt),
  updatedAt: iso(c.updatedAt),
});

const listConfigs = createRoute({
  method: "get",
  path: "/",
  tags: ["configs"],
  summary: "List config templates, in name order",
  request: {
    query: z.object({
      limit: z.coerce.number().int().min(1).max(1000).default(100),
      cursor: z.string().max(64).optional().openapi({ description: "`next` of the last page" }),
    }),
  },
  responses: { 200: json(ConfigList, "A page of config templates"), ...errors(400) },
});

const getConfig = createRoute({
  method: "get",
  path: "/{name}",
  tags: ["configs"],
  summary: "Read a config template",
  request: { params: NameParam },
  responses: { 200: json(ConfigSchema, "The template"), ...errors(400), ...notFound("Config") },
});

const putConfig = createRoute({
  method: "put",
  path: "/{name}",
  tags: ["configs"],
  summary: "Create or replace a config template, then merge it into every selected twin's " +
    "desired state (twins provisioned later get it too); answers when all are patched",
  request: {
    params: NameParam,
    headers: z.object({
      "if-match": z.string().optional().openapi({
        description: "Only if the template is at this version (else 412 version_conflict)",
      }),
    }),
    body: { content: { "application/json": { schema: ConfigBody } }, required: true },
  },
  responses: {
    200: json(PutResult, "Template replaced (or unchanged) and applied"),
    201: json(PutResult, "Template created and applied"),
    ...errors(400, 409, 412, 413),
  },
});

const deleteConfig = createRoute({
  method: "delete",
  path: "/{name}",
  tags: ["configs"],
  summary: "Delete a config template; the desired state it set stays as it is",
  request: { params: NameParam },
  responses: { 204: { description: "Deleted" }, ...errors(400), ...notFound("Config") },
});

const configStatus = createRoute({
  method: "get",
  path: "/{name}/status",
  tags: ["configs"],
  summary: "How many targeted twins report the config applied, pending or failed (a " +
    "site-scoped caller: of its sites' twins)",
  request: { params: NameParam },
  responses: { 200: json(StatusSchema, "Counts"), ...errors(400), ...notFound("Config") },
});

/** Config template routes, mounted at `/v1/configs`. */
export function configRoutes(svc: ConfigService): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: hook });

  app.openapi(listConfigs, async (c) => {
    const { limit, cursor } = c.req.valid("query");
    const all = (await svc.list()).filter((x) => cursor === undefined || x.name > cursor);
    const items = all.slice(0, limit);
    const next = all.length > limit ? items[items.length - 1].name : undefined;
    return c.json({ items: items.map(view), ...(next ? { next } : {}) }, 200);
  });

  app.openapi(getConfig, async (c) => {
    const { name } = c.req.valid("param");
    const cfg = await svc.get(name);
    if (!cfg) throw new ConfigNotFoundError(name);
    return c.json(view(cfg), 200);
  });

  app.openapi(putConfig, async (c) => {
    const { name } = c.req.valid("param");
    const raw = c.req.valid("header")["if-match"];
    let ifMatch: number | undefined;
    if (raw !== undefined) {
      const v = raw.replace(/^W\//, "").replaceAll('"', "").trim();
      if (!/^\d{1,15}$/.test(v)) {
        throw new BadRequestError("If-Match must be a config version number", "bad_if_match");
      }
      ifMatch = Number(v);
    }
    const r = await svc.put(name, c.req.valid("json"), ifMatch);
    return c.json(
      { config: view(r.config), applied: r.applied },
      r.created ? 201 : 200,
      { etag: `"${r.config.version}"` },
    );
  });

  app.openapi(deleteConfig, async (c) => {
    const { name } = c.req.valid("param");
    if (!(await svc.delete(name))) throw new ConfigNotFoundError(name);
    return c.body(null, 204);
  });

  app.openapi(configStatus, async (c) => {
    const { name } = c.req.valid("param");
    // a site-scoped caller sees the counts and ids of its own sites' twins only
    const scope = siteScope(c);
    return c.json(await svc.status(name, scope && ((t) => scope(t.attributes.site))), 200);
  });

  return app;
}
