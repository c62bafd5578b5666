/**
 * Firmware campaign routes: create, list, read (per-wave counts, overall progress, state and
 * why), per-device records with history, pause, resume, cancel, delete. Bodies that do not fit
 * the schema are `campaign_invalid`, naming the field.
 * @module
 */
import { createRoute, type Hook, OpenAPIHono, z } from "@hono/zod-openapi";
import { BadRequestError } from "../src/errors.ts";
import { DEVICE_STATES } from "../src/mgmt/campaign_model.ts";
import type { CampaignService } from "../src/mgmt/campaign_service.ts";
import { errors, json, notFound } from "./schemas.ts";
import { validationHook } from "./validation.ts";
import { siteScope } from "./auth.ts";
import type { TwinService } from "../src/runtime/twin_service.ts";
import {
  CampaignBody,
  CampaignList,
  CampaignSchema,
  DevicePage,
  deviceView,
  IdParam,
  view,
} from "./campaign_schemas.ts";

/** A bad id is `bad_campaign_id`, a bad body `campaign_invalid`; else as validationHook. */
// deno-lint-ignore no-explicit-any
const hook: Hook<any, any, any, any> = (result, c) => {
  if (!result.success && (result.target === "param" || result.target === "json")) {
    const issue = result.error.issues[0];
    const where = issue.path.length ? issue.path.join(".") : "body";
    throw new BadRequestError(
      `${where}: ${issue.message}`,
      result.target === "json" ? "campaign_invalid" : "bad_campaign_id",
    );
  }
  return validationHook(result, c);
};
const tags = ["campaigns"];

const createCampaign = createRoute({
  method: "post",
  path: "/",
  tags,
  summary: "Create a firmware campaign; it starts on the next driver tick (or at startAt)",
  request: { body: { content: { "application/json": { schema: CampaignBody } }, required: true } },
  responses: {
    201: json(CampaignSchema, "Created, scheduled"),
    ...errors(400, 409, 413),
    ...notFound("Firmware"),
  },
});

const listCampaigns = createRoute({
  method: "get",
  path: "/",
  tags,
  summary: "List campaigns, oldest first",
  request: {
    query: z.object({
      limit: z.coerce.number().int().min(1).max(1000).default(100),
      cursor: z.string().max(64).optional().openapi({ description: "`next` of the last page" }),
    }),
  },
  responses: { 200: json(CampaignList, "A page of campaigns"), ...errors(400) },
});

const getCampaign = createRoute({
  method: "get",
  path: "/{id}",
  tags,
  summary: "A campaign: state and why, per-wave counts, overall progress",
  request: { params: IdParam },
  responses: { 200: json(CampaignSchema, "The campaign"), ...errors(400), ...notFound("Campaign") },
});

const listDevices = createRoute({
  method: "get",
  path: "/{id}/devices",
  tags,
  summary: "Devices of a campaign in target order, with their history (a site-scoped caller: " +
    "its sites' devices; a page may hold fewer than limit, follow next)",
  request: {
    params: IdParam,
    query: z.object({
      state: z.enum(DEVICE_STATES).optional(),
      limit: z.coerce.number().int().min(1).max(1000).default(100),
      cursor: z.string().regex(/^\d{1,7}$/, "cursor must be a `next` of this route").optional(),
    }),
  },
  responses: {
    200: json(DevicePage, "A page of devices"),
    ...errors(400),
    ...notFound("Campaign"),
  },
});

const action = (verb: "pause" | "resume" | "cancel", summary: string) =>
  createRoute({
    method: "post",
    path: `/{id}/${verb}`,
    tags,
    summary,
    request: { params: IdParam },
    responses: {
      200: json(CampaignSchema, "The campaign after the change"),
      ...errors(400, 409),
      ...notFound("Campaign"),
    },
  });

const deleteCampaign = createRoute({
  method: "delete",
  path: "/{id}",
  tags,
  summary: "Delete a completed, cancelled or failed campaign and its device records",
  request: { params: IdParam },
  responses: { 204: { description: "Deleted" }, ...errors(400, 409), ...notFound("Campaign") },
});

/**
 * Campaign routes, mounted at `/v1/campaigns`. `twins` gives the devices' sites for callers
 * with a site scope (without it, such a caller sees no device records).
 */
export function campaignRoutes(
  svc: CampaignService,
  twins?: Pick<TwinService, "get">,
): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: hook });

  app.openapi(createCampaign, async (c) => {
    const created = await svc.create(c.req.valid("json"));
    return c.json(view(created), 201);
  });

  app.openapi(listCampaigns, async (c) => {
    const { limit, cursor } = c.req.valid("query");
    const page = await svc.list(limit, cursor);
    return c.json({ items: page.items.map(view), ...(page.next ? { next: page.next } : {}) }, 200);
  });

  app.openapi(getCampaign, async (c) => c.json(view(await svc.get(c.req.valid("param").id)), 200));

  app.openapi(listDevices, async (c) => {
    const { id } = c.req.valid("param");
    const { state, limit, cursor } = c.req.valid("query");
    const page = await svc.devices(id, {
      state,
      limit,
      cursor: cursor === undefined ? undefined : Number(cursor),
    });
    // a site-scoped caller sees its own sites' devices only (a page may come out shorter)
    const scope = siteScope(c);
    let items = page.items;
    if (scope) {
      const sites = twins
        ? await Promise.all(
          items.map((d) => twins.get(d.id).then((t) => t?.attributes.site, () => undefined)),
        )
        : [];
      items = items.filter((_, i) => scope(sites[i]));
    }
    return c.json({
      items: items.map(deviceView),
      ...(page.next ? { next: page.next } : {}),
    }, 200);
  });

  const verbs = {
    pause: "Pause: no more offers; devices already offered go on",
    resume: "Resume a paused campaign (after an automatic pause, accepting the failures so far)",
    cancel: "Cancel: offers not yet acted on are withdrawn; updates under way finish",
  } as const;
  for (const verb of Object.keys(verbs) as (keyof typeof verbs)[]) {
    app.openapi(action(verb, verbs[verb]), async (c) => {
      const { id } = c.req.valid("param");
      return c.json(view(await svc[verb](id)), 200);
    });
  }

  app.openapi(deleteCampaign, async (c) => {
    await svc.delete(c.req.valid("param").id);
    return c.body(null, 204);
  });

  return app;
}
