/**
 * Device profile routes: list, read, create/replace, delete. Validation of the document is
 * the service's (`profile_invalid`, naming the first bad field); this layer checks the name.
 * @module
 */
import { createRoute, type Hook, OpenAPIHono } from "@hono/zod-openapi";
import { BadRequestError, TwinmillError } from "../src/errors.ts";
import type { ProfileService, ProfileView } from "../src/rules/service.ts";
import {
  errors,
  iso,
  json,
  notFound,
  ProfileBody,
  ProfileList,
  ProfileNameParam,
  ProfileViewSchema,
} from "./schemas.ts";
import { validationHook } from "./validation.ts";

/** No profile has this name. */
export class ProfileNotFoundError extends TwinmillError {
  override name = "ProfileNotFoundError";
  constructor(name: string) {
    super("profile_not_found", 404, `Profile "${name}" not found`);
  }
}

/** A bad name is `bad_profile_name`; anything else as {@linkcode validationHook} says. */
// deno-lint-ignore no-explicit-any
const hook: Hook<any, any, any, any> = (result, c) => {
  if (!result.success && result.target === "param") {
    const issue = result.error.issues[0];
    throw new BadRequestError(`${issue.path.join(".")}: ${issue.message}`, "bad_profile_name");
  }
  return validationHook(result, c);
};

/** A profile with its times as RFC 3339. */
const view = (p: ProfileView) => ({
  ...p,
  updatedAt: iso(p.updatedAt),
  status: { rules: p.status.rules.map((r) => ({ ...r, at: iso(r.at) })) },
});

const listProfiles = createRoute({
  method: "get",
  path: "/",
  tags: ["profiles"],
  summary: "List device profiles, in name order",
  responses: { 200: json(ProfileList, "Every profile") },
});

const getProfile = createRoute({
  method: "get",
  path: "/{name}",
  tags: ["profiles"],
  summary: "Read a device profile",
  request: { params: ProfileNameParam },
  responses: {
    200: json(ProfileViewSchema, "The profile"),
    ...errors(400),
    ...notFound("Profile"),
  },
});

const putProfile = createRoute({
  method: "put",
  path: "/{name}",
  tags: ["profiles"],
  summary: "Create or replace a device profile; twins using it apply it at once",
  request: {
    params: ProfileNameParam,
    body: { content: { "application/json": { schema: ProfileBody } }, required: true },
  },
  responses: {
    200: json(ProfileViewSchema, "Profile replaced"),
    201: json(ProfileViewSchema, "Profile created"),
    ...errors(400, 413),
  },
});

const deleteProfile = createRoute({
  method: "delete",
  path: "/{name}",
  tags: ["profiles"],
  summary: "Delete a device profile; twins using it clear their alarms",
  request: { params: ProfileNameParam },
  responses: { 204: { description: "Deleted" }, ...errors(400), ...notFound("Profile") },
});

/** Profile routes, mounted at `/v1/profiles`. */
export function profileRoutes(svc: ProfileService): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: hook });

  app.openapi(listProfiles, async (c) => {
    const items = await svc.list();
    return c.json({ items: items.map(view) }, 200);
  });

  app.openapi(getProfile, async (c) => {
    const { name } = c.req.valid("param");
    const p = await svc.get(name);
    if (!p) throw new ProfileNotFoundError(name);
    return c.json(view(p), 200);
  });

  app.openapi(putProfile, async (c) => {
    const { name } = c.req.valid("param");
    const { created, profile } = await svc.put(name, c.req.valid("json"));
    return c.json(view(profile), created ? 201 : 200);
  });

  app.openapi(deleteProfile, async (c) => {
    const { name } = c.req.valid("param");
    if (!(await svc.delete(name))) throw new ProfileNotFoundError(name);
    return c.body(null, 204);
  });

  return app;
}
