/**
 * Firmware campaign routes: create, list, read (per-wave counts, overall progress, state and
 * why), per-device records with history, pause, resume, cancel, delete. Bodies that do not fit
 * the schema are `campaign_invalid`, naming the field.
 * @module
 */
import { createRoute, type Hook, OpenAPIHono, z } from "@hono/zod-openapi";
import { BadRequestError } from "../src/errors.ts";
import { progressOf } from "../src/mgmt/campaigns.ts";
import {
  type Campaign,
  CAMPAIGN_STATES,
  DEVICE_STATES,
  LIMITS,
} from "../src/mgmt/campaign_model.ts";
import { type CampaignDevice, type CampaignService } from "../src/mgmt/campaign_service.ts";
import { DAYS } from "../src/mgmt/maintenance_window.ts";
import { errors, iso, json, notFound } from "./schemas.ts";
import { validationHook } from "./validation.ts";
import { siteScope } from "./auth.ts";
import type { TwinService } from "../src/runtime/twin_service.ts";

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

const IdParam = z.object({
  id: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, "campaign id must be 1-64 of A-Z a-z 0-9 _ - . :")
    .openapi({ param: { name: "id", in: "path" }, example: "c-lvqmhs00-87db3bdd" }),
});

const Time = z.iso.datetime().openapi({ example: "2024-05-01T12:00:00.000Z" });
const Fraction = z.number().gt(0).max(1);

const Selector = z.record(
  z.string().min(1).max(128),
  z.union([z.string().max(1024), z.number(), z.boolean()]),
).refine((s) => Object.keys(s).length >= 1 && Object.keys(s).length <= 16, {
  message: "give 1-16 attributes",
}).openapi({
  description: "Targets: twins whose attributes equal all of these (compared as text), " +
    `resolved in id order when the campaign starts (at most ${LIMITS.maxTargets})`,
  example: { type: "press", site: "A" },
});

const WaveSpec = z.union([
  z.object({ count: z.number().int().min(1).max(LIMITS.maxTargets) }).strict(),
  z.object({ percent: z.number().gt(0).max(100) }).strict(),
]).openapi("CampaignWaveSpec", {
  description: "A number of twins, or a percentage of all targets (rounded up). The last wave " +
    "takes the rest, whatever it says.",
});

const Window = z.object({
  start: z.string().openapi({ example: "22:00", description: "HH:MM" }),
  end: z.string().openapi({ example: "04:00", description: "HH:MM; before start = next day" }),
  days: z.array(z.enum(DAYS)).max(7).optional().openapi({
    description: "Days the window starts on (a window across midnight ends the next day); " +
      "absent = every day",
  }),
  tz: z.string().max(64).optional().openapi({
    description: "IANA time zone (default UTC)",
    example: "UTC",
  }),
}).strict().openapi("MaintenanceWindow", {
  description: "Offers are sent only while the window is open; devices already offered go on",
});

const CampaignBody = z.object({
  name: z.string().min(1).max(128),
  firmware: z.string().min(1).max(128).openapi({
    description: "Id of an uploaded firmware image (`POST /v1/firmware`)",
    example: "press-fw-2.0.0",
  }),
  selector: Selector,
  waves: z.array(WaveSpec).min(1).max(LIMITS.maxWaves).default([{ percent: 100 }]),
  successThreshold: Fraction.default(1).openapi({
    description: "Fraction of a wave that must be done before the next wave starts (default 1)",
  }),
  errorThreshold: Fraction.default(0.2).openapi({
    description: "Fraction of a wave that failed which pauses the campaign (default 0.2)",
  }),
  maintenanceWindow: Window.optional(),
  timeoutMinutes: z.number().gt(0).max(43_200).optional().openapi({
    description: "A device not done this long after its offer has failed",
  }),
  startAt: Time.optional().openapi({ description: "Do not start before" }),
}).strict().openapi("CampaignBody", {
  example: {
    name: "presses to 2.0.0",
    firmware: "press-fw-2.0.0",
    selector: { type: "press" },
    waves: [{ count: 2 }, { percent: 100 }],
    successThreshold: 1,
    errorThreshold: 0.5,
    maintenanceWindow: { start: "22:00", end: "04:00", tz: "UTC" },
  },
});

const Counts = z.object(
  Object.fromEntries(DEVICE_STATES.map((s) => [s, z.number().int()])) as Record<
    typeof DEVICE_STATES[number],
    z.ZodNumber
  >,
).openapi("CampaignCounts", {
  description: "Devices by state: pending (not offered yet), sent (offered, no report yet), " +
    "downloading, installing, done, failed, cancelled",
});

const WaveSchema = z.object({
  number: z.number().int(),
  size: z.number().int(),
  state: z.enum(["pending", "running", "finished"]).openapi({
    description: "finished: the next wave was released (the last wave: every device finished)",
  }),
  startedAt: Time.nullable(),
  finishedAt: Time.nullable(),
  override: z.boolean().openapi({
    description: "Resumed after an automatic pause: its failures no longer pause the campaign",
  }),
  counts: Counts,
}).openapi("CampaignWave");

const CampaignSchema = z.object({
  id: z.string(),
  name: z.string(),
  state: z.enum(CAMPAIGN_STATES),
  reason: z.string().openapi({
    example: "error threshold 0.2 reached in wave 1 (1 of 2 failed)",
    description: "Why it is in its state",
  }),
  pausedBy: z.enum(["user", "error_threshold", "success_threshold"]).nullable(),
  revision: z.number().int().openapi({
    description: "+1 with every change (the `version` of its stream events)",
  }),
  firmware: z.object({
    id: z.string(),
    version: z.string(),
    size: z.number().int(),
    sha256: z.string(),
    signature: z.string().optional(),
  }),
  selector: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
  plan: z.array(WaveSpec).openapi({ description: "The waves as asked for" }),
  successThreshold: z.number(),
  errorThreshold: z.number(),
  maintenanceWindow: Window.optional(),
  timeoutMinutes: z.number().optional(),
  startAt: Time.optional(),
  currentWave: z.number().int().nullable().openapi({ description: "1-based; null before start" }),
  waves: z.array(WaveSchema),
  progress: Counts.extend({
    total: z.number().int().openapi({ description: "Targets resolved at start" }),
    finished: z.number().openapi({ description: "Fraction done, failed or cancelled" }),
  }),
  createdAt: Time,
  updatedAt: Time,
  startedAt: Time.nullable(),
  finishedAt: Time.nullable(),
}).openapi("Campaign");

const CampaignList = z.object({
  items: z.array(CampaignSchema),
  next: z.string().optional().openapi({ description: "Cursor of the next page; absent at end" }),
}).openapi("CampaignList");

const History = z.object({
  ts: Time,
  state: z.enum(DEVICE_STATES),
  progress: z.number().int().nullable(),
  version: z.string().nullable(),
  error: z.string().optional(),
});

const DeviceSchema = z.object({
  id: z.string().openapi({ description: "Twin id" }),
  wave: z.number().int(),
  state: z.enum(DEVICE_STATES),
  progress: z.number().int().nullable(),
  version: z.string().nullable().openapi({ description: "Version of its last report" }),
  offeredAt: Time.nullable(),
  updatedAt: Time,
  error: z.string().optional(),
  history: z.array(History).openapi({
    description: `The newest ${LIMITS.history} changes as the campaign saw them`,
  }),
}).openapi("CampaignDevice");

const DevicePage = z.object({
  items: z.array(DeviceSchema),
  next: z.string().optional().openapi({
    description: "Cursor of the next page (a page may hold fewer items than asked); absent at end",
  }),
}).openapi("CampaignDevicePage");

const t = (ms: number | null) => ms === null ? null : iso(ms);

function view(c: Campaign) {
  const s = c.spec;
  return {
    id: c.id,
    name: s.name,
    state: c.state,
    reason: c.reason,
    pausedBy: c.pausedBy,
    revision: c.revision,
    firmware: s.firmware,
    selector: s.selector,
    plan: s.waves,
    successThreshold: s.successThreshold,
    errorThreshold: s.errorThreshold,
    ...(s.maintenanceWindow ? { maintenanceWindow: s.maintenanceWindow } : {}),
    ...(s.timeoutMinutes !== undefined ? { timeoutMinutes: s.timeoutMinutes } : {}),
    ...(s.startAt !== undefined ? { startAt: iso(s.startAt) } : {}),
    currentWave: c.wave >= 0 ? c.wave + 1 : null,
    waves: c.waves.map((w) => ({
      number: w.number,
      size: w.size,
      state: w.finishedAt !== null ? "finished" : w.startedAt !== null ? "running" : "pending",
      startedAt: t(w.startedAt),
      finishedAt: t(w.finishedAt),
      override: w.override,
      counts: w.counts,
    })),
    progress: progressOf(c),
    createdAt: iso(c.createdAt),
    updatedAt: iso(c.updatedAt),
    startedAt: t(c.startedAt),
    finishedAt: t(c.finishedAt),
  };
}

const deviceView = (d: CampaignDevice) => ({
  id: d.id,
  wave: d.wave,
  state: d.state,
  progress: d.progress,
  version: d.version,
  offeredAt: t(d.offeredAt),
  updatedAt: iso(d.updatedAt),
  ...(d.error ? { error: d.error } : {}),
  history: d.history.map((h) => ({ ...h, ts: iso(h.ts) })),
});

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
