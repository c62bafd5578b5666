/**
 * Zero-touch provisioning routes: provisioning keys (admin; `/v1/provisioning-keys`) and the
 * device's exchange of a key for its own credentials (`POST /v1/provision`, authenticated by
 * the provisioning key as `Authorization: Bearer <key>` — the auth middleware lets it through).
 * @module
 */
import { createRoute, type Hook, OpenAPIHono, z } from "@hono/zod-openapi";
import { BadRequestError } from "../src/errors.ts";
import type { Context } from "hono";
import type { Provisioning } from "../src/mgmt/provisioning.ts";
import {
  type KeyView,
  PROVISIONING_LIMITS as L,
  ProvisioningKeyNotFoundError,
  type ProvisionRequest,
} from "../src/mgmt/provisioning_types.ts";
import { errors, ErrorSchema, iso, json, notFound } from "./schemas.ts";
import { validationHook } from "./validation.ts";

const Name = z.string().min(1).max(128);
const Value = z.union([z.string().max(L.maxValueLength), z.number(), z.boolean()]);
const Attributes = z.record(z.string().min(1).max(128), Value);
const Pattern = z.string().regex(/^[A-Za-z0-9_.:*-]{1,128}$/, "a twin id or a glob with *");

const Template = z.object({
  type: Name.optional(),
  site: Name.optional(),
  profile: Name.optional(),
  attributes: Attributes.optional().openapi({
    description: "More attributes; they win over the device's",
  }),
}).openapi("ProvisioningTemplate", {
  description: "What every device provisioned with the key gets; the device cannot override it",
});

const KeySpecBody = z.object({
  name: Name.openapi({ example: "line 3 presses" }),
  template: Template.optional(),
  allow: z.array(Pattern).max(L.maxPatterns).optional().openapi({
    description: "Twin ids or globs (`press-*`, anchored); absent: any id",
    example: ["press-*"],
  }),
  deny: z.array(Pattern).max(L.maxPatterns).optional().openapi({
    description: "Twin ids or globs refused even when allowed",
  }),
  quota: z.number().int().min(1).max(L.maxQuota).optional().openapi({
    description: `Most devices it may provision (default ${L.defaultQuota})`,
  }),
  expiresAt: z.iso.datetime({ offset: true }).optional().openapi({
    description: "RFC 3339; default 30 days from now, at most 365 days",
  }),
  reprovision: z.boolean().optional().openapi({
    description: "May it provision an id whose twin exists (replacing its attributes)?",
  }),
}).openapi("ProvisioningKeySpec");

const KeySchema = z.object({
  id: z.string().openapi({ example: "pk_0123456789ab" }),
  name: z.string(),
  template: Template,
  allow: z.array(z.string()),
  deny: z.array(z.string()),
  quota: z.number().int(),
  used: z.number().int().openapi({ description: "Devices provisioned with it" }),
  remaining: z.number().int(),
  expiresAt: z.string(),
  expired: z.boolean(),
  createdAt: z.string(),
  lastUsedAt: z.string().nullable(),
  reprovision: z.boolean(),
}).openapi("ProvisioningKey");

const CreatedKey = KeySchema.extend({
  key: z.string().openapi({
    description: "The provisioning key; shown only in this answer",
    example: "tmpk_0123456789ab_…",
  }),
}).openapi("CreatedProvisioningKey");

const KeyIdParam = z.object({
  id: z.string().regex(/^pk_[0-9a-f]{12}$/, "key id looks like pk_0123456789ab")
    .openapi({ param: { name: "id", in: "path" }, example: "pk_0123456789ab" }),
});

const view = (k: KeyView, now = Date.now()) => ({
  ...k,
  remaining: Math.max(0, k.quota - k.used),
  expired: k.expiresAt <= now,
  expiresAt: iso(k.expiresAt),
  createdAt: iso(k.createdAt),
  lastUsedAt: k.lastUsedAt === null ? null : iso(k.lastUsedAt),
});

const createKey = createRoute({
  method: "post",
  path: "/",
  tags: ["provisioning"],
  summary: "Create a provisioning key; the key is shown once",
  request: {
    body: { content: { "application/json": { schema: KeySpecBody } }, required: true },
  },
  responses: {
    201: json(CreatedKey, "The key's settings and the key itself"),
    ...errors(400),
    409: json(ErrorSchema, "Too many provisioning keys"),
  },
});

const listKeys = createRoute({
  method: "get",
  path: "/",
  tags: ["provisioning"],
  summary: "List provisioning keys (never the keys themselves)",
  responses: { 200: json(z.object({ items: z.array(KeySchema) }), "Keys, in id order") },
});

const getKey = createRoute({
  method: "get",
  path: "/{id}",
  tags: ["provisioning"],
  summary: "Read a provisioning key's settings and usage",
  request: { params: KeyIdParam },
  responses: {
    200: json(KeySchema, "The key"),
    ...errors(400),
    ...notFound("Provisioning key"),
  },
});

const deleteKey = createRoute({
  method: "delete",
  path: "/{id}",
  tags: ["provisioning"],
  summary: "Revoke a provisioning key (devices it provisioned keep their credentials)",
  request: { params: KeyIdParam },
  responses: {
    204: { description: "Revoked" },
    ...errors(400),
    ...notFound("Provisioning key"),
  },
});

/** A bad key id is `bad_provisioning_key_id` (not a twin's); anything else as validationHook. */
// deno-lint-ignore no-explicit-any
const keyHook: Hook<any, any, any, any> = (result, c) => {
  if (!result.success && result.target === "param") {
    const issue = result.error.issues[0];
    throw new BadRequestError(
      `${issue.path.join(".")}: ${issue.message}`,
      "bad_provisioning_key_id",
    );
  }
  return validationHook(result, c);
};

/** Provisioning key routes (admin), mounted at `/v1/provisioning-keys`. */
export function provisioningKeyRoutes(p: Provisioning): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: keyHook });
  app.openapi(createKey, async (c) => {
    const b = c.req.valid("json");
    const { key, secret } = await p.createKey({
      ...b,
      expiresAt: b.expiresAt === undefined ? undefined : Date.parse(b.expiresAt),
    });
    return c.json({ ...view(key), key: secret }, 201);
  });
  app.openapi(listKeys, async (c) => {
    const now = Date.now();
    return c.json({ items: (await p.listKeys()).map((k) => view(k, now)) }, 200);
  });
  app.openapi(getKey, async (c) => {
    const { id } = c.req.valid("param");
    const k = await p.getKey(id);
    if (!k) throw new ProvisioningKeyNotFoundError(id);
    return c.json(view(k), 200);
  });
  app.openapi(deleteKey, async (c) => {
    const { id } = c.req.valid("param");
    if (!(await p.deleteKey(id))) throw new ProvisioningKeyNotFoundError(id);
    return c.body(null, 204);
  });
  return app;
}

const ProvisionBody = z.object({
  id: z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/).openapi({ example: "press-42" }),
  attributes: Attributes.optional().openapi({
    description: "The device's attributes; `type`, `site`, `profile` come from the key's template",
  }),
}).openapi("ProvisionRequest");

const Answer = z.object({
  status: z.literal("ok"),
  id: z.string(),
  credentials: z.object({
    type: z.literal("token"),
    username: z.string(),
    token: z.string().openapi({ description: "Shown only in this answer; store it on the device" }),
  }),
  ignoredAttributes: z.array(z.string()).openapi({
    description: "Attributes the device sent that the template sets instead",
  }),
  mqtt: z.object({
    username: z.string(),
    topics: z.record(z.string(), z.string()),
  }),
}).openapi("ProvisionAnswer");

const err = (description: string) => json(ErrorSchema, description);

/** `POST /v1/provision` (device side; the provisioning key authenticates it). */
export function provisionRoutes(p: Provisioning): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  // documented here; the body is read by the handler so that the key is checked first
  app.openAPIRegistry.registerPath({
    method: "post",
    path: "/",
    tags: ["provisioning"],
    summary: "A new device exchanges a provisioning key (Authorization: Bearer) for its token",
    request: {
      body: { content: { "application/json": { schema: ProvisionBody } }, required: true },
    },
    responses: {
      201: json(Answer, "Provisioned: the twin exists and the device has its own token"),
      400: err("bad_request, bad_twin_id or bad_attributes"),
      401: err("provisioning_key_invalid or provisioning_key_expired"),
      403: err("provisioning_quota_exhausted or device_not_allowed"),
      409: err("twin_exists or provisioning_in_progress"),
    },
  });
  app.post("/", async (c: Context) => {
    const m = /^Bearer\s+(\S+)$/i.exec(c.req.header("authorization") ?? "");
    const answer = await p.provision(m?.[1] ?? "", await readBody(c), {
      via: "http",
      requestId: c.res.headers.get("x-request-id") ?? undefined,
    });
    return c.json(answer, 201);
  });
  return app;
}

/** The JSON body, or why it is not a JSON object. */
async function readBody(c: Context): Promise<ProvisionRequest | string> {
  let v: unknown;
  try {
    v = JSON.parse(await c.req.text());
  } catch {
    return 'The body must be JSON: {"id": "...", "attributes": {...}}';
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    return 'The body must be a JSON object: {"id": "...", "attributes": {...}}';
  }
  return v as ProvisionRequest;
}
